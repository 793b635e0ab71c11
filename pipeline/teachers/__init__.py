"""Teachers: anything that maps texts to class probabilities.

Every teacher satisfies :class:`pipeline.teachers.base.Teacher` and registers under a name
(``embedding-head``, ``hf``, ``llm``, ``onnx``, ``python``) with :func:`register`; params.yaml picks one
by ``teacher.kind``. Kind modules are imported on demand, so only the chosen teacher's libraries load.
"""

from pipeline.teachers.base import TEACHERS, Teacher, TeacherError, build_teacher, register
from pipeline.teachers.loader import kind_settings, load_teacher

__all__ = ["TEACHERS", "Teacher", "TeacherError", "build_teacher", "kind_settings", "load_teacher", "register"]
