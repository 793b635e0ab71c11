"""Does the default gate pass good students and fail weak ones? Real pipeline students, one table.

Run it in a project after ``dvc repro`` (it reads data/, models/teacher and models/student from there):

    python benchmarks/gate_students.py                       # this project: the embedded default data
    python benchmarks/gate_students.py --project ../b77      # another project, e.g. BANKING77

For the project's own student and, for each seed, two weak students, it runs the real export and
evaluate stages with the project's params.yaml (its gate thresholds unchanged) and prints the verdict:

- ``short``: the distill stage cut to 1 epoch over 256 hashed buckets (``--set`` overrides only);
- ``noisy``: the project's own trained weights with Gaussian noise of ``--noise`` times each tensor's
  standard deviation added (seeded; zero entries such as the padding row stay zero), then exported and
  evaluated like any student. Noise of a fixed size does not always weaken a student (a copy can keep
  all of its teacher's accuracy, and the gate must pass a student that keeps 99 %), so the noise is
  doubled until the copy agrees with the teacher on at least ``--weak-drop`` fewer of the distill
  stage's validation rows than the trained student does: weak by a measure taken on validation, never
  on the test split the gate judges. ``--weak-drop 0`` keeps the noise fixed.

A student whose int8 export the export stage's parity check refuses counts as failed (it never reaches
the gate), and the table says so.

No champion is compared (``registry.url`` points at an empty registry in the scratch folder), so each
verdict is the student against its teacher and the params' floors alone: the gate of a first release.
``--champion`` instead judges every student also against the project's own trained bundle
(``models/bundle``) as the production champion, as every release after the first is judged. Scratch outputs go to a
temporary folder; the project's own outputs are never written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

class ExportRefused(Exception):
    """The export stage's own parity gate refused the student (its int8 answers drift from fp32)."""


def run(project: Path, args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=project, capture_output=True, text=True)
    if proc.returncode != 0:
        if "parity check failed" in proc.stderr:
            raise ExportRefused(proc.stderr.strip().splitlines()[-1])
        raise SystemExit(f"{' '.join(args[:1])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def export_and_evaluate(project: Path, params: str, checkpoint: Path, out: Path, champion: Path | None = None) -> dict:
    run(project, ["pipeline.stages.export", "--params", params, "--checkpoint", str(checkpoint),
                  "--data", "data/ingested.parquet", "--labels", "data/labels.parquet", "--out", str(out / "bundle"),
                  "--metrics", str(out / "export.json")])
    no_champion = ["--set", f"registry.url=sqlite:///{out / 'registry.db'}"]  # empty: no production alias
    if champion is not None:  # an explicit champion bundle wins over the (empty) registry
        no_champion += ["--set", f"evaluate.champion.bundle={champion}"]
    run(project, ["pipeline.stages.evaluate", "--params", params, *no_champion, "--bundle", str(out / "bundle"),
                  "--teacher-dir", "models/teacher", "--data", "data/ingested.parquet", "--labels",
                  "data/labels.parquet", "--suites-root", ".", "--gate", str(out / "gate.json"),
                  "--report", str(out / "gate.md"), "--metrics", str(out / "metrics.json")])
    return json.loads((out / "gate.json").read_text())


def short_student(project: Path, params: str, seed: int, out: Path) -> Path:
    run(project, ["pipeline.stages.distill", "--params", params, "--set", "distill.epochs=1",
                  "--set", "distill.featurizer.buckets=256", "--set", f"seed={seed}", "--data", "data/ingested.parquet",
                  "--labels", "data/labels.parquet", "--teacher-dir", "models/teacher", "--out", str(out / "student"),
                  "--metrics", str(out / "distill.json"), "--plots", str(out / "plots.json")])
    return out / "student" / "checkpoint.pt"


def perturbed(state_dict: dict, seed: int, noise: float) -> dict:
    import torch

    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in state_dict.items():
        if tensor.is_floating_point() and tensor.numel() > 1:
            # entries that are exactly zero stay zero: the embedding's padding row must (ngram_bag.py)
            tensor = tensor + torch.randn(tensor.shape, generator=gen) * float(tensor.std()) * noise * (tensor != 0)
        state[name] = tensor
    return state


class ValidationAgreement:
    """The share of the distill stage's validation rows where a student's answer is the teacher's."""

    def __init__(self, project: Path, params: str):
        import numpy as np
        import pandas as pd

        from pipeline.config import load_params
        from pipeline.distill.checkpoint import load_student
        from pipeline.distill.data import build_transfer_set
        from pipeline.students.featurize import Featurizer

        self.loaded = load_student(project / "models" / "student" / "checkpoint.pt")
        share = load_params(project / params).distill.validation_share
        data = build_transfer_set(pd.read_parquet(project / "data" / "ingested.parquet"),
                                  pd.read_parquet(project / "data" / "labels.parquet"), self.loaded.labels, share)
        self.texts, self.teacher = data.val_texts, np.argmax(data.val_probs, axis=1)
        self.featurizer = Featurizer(self.loaded.featurizer_spec)

    def __call__(self, state_dict: dict) -> float:
        import numpy as np

        from pipeline.distill.train import predict_logits

        self.loaded.model.load_state_dict(state_dict)
        answers = np.argmax(predict_logits(self.loaded.model, self.featurizer, self.texts), axis=1)
        return float(np.mean(answers == self.teacher))


def noisy_student(project: Path, seed: int, noise: float, out: Path, weak_drop: float = 0.0,
                  validation: ValidationAgreement | None = None, doublings: int = 6) -> tuple[Path, dict]:
    """The trained weights plus noise; with ``weak_drop``, the noise doubles until the copy's validation
    agreement with the teacher is that much under the trained student's (at most ``doublings`` times)."""
    from pipeline.distill.checkpoint import read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(project / "models" / "student" / "checkpoint.pt")
    info: dict = {"noise": noise}
    state = perturbed(ckpt["state_dict"], seed, noise)
    if weak_drop > 0 and validation is not None:
        trained = validation(ckpt["state_dict"])
        agreement = validation(state)
        for _ in range(doublings):
            if trained - agreement >= weak_drop:
                break
            noise *= 2
            state = perturbed(ckpt["state_dict"], seed, noise)
            agreement = validation(state)
        info = {"noise": noise, "val_agreement": agreement, "trained_val_agreement": trained}
    path = out / "student" / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    save_checkpoint(path, {k: v for k, v in {**ckpt, "state_dict": state}.items() if k != "format"})
    return path, info


def summary(name: str, gate: dict, seconds: float) -> dict:
    gold = gate["suites"]["gold"]
    student, teacher = gold["student_int8"]["accuracy"], gold["teacher"]["accuracy"]
    failing = sorted({c["suite"].split("/", 1)[0] + (" vs champion" if c.get("kind") == "champion" else "")
                      for c in gate["checks"] if not c["passed"]})
    return {"student": name, "accuracy": student, "teacher": teacher, "retention": student / teacher,
            "paired_upper": gold["student_int8"].get("accuracy_paired_upper", float("nan")),
            "passed": gate["passed"], "checks": len(gate["checks"]),
            "failing": sum(not c["passed"] for c in gate["checks"]), "failing_suites": failing,
            "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=Path("."), help="a project after dvc repro")
    parser.add_argument("--params", default="params.yaml", help="params file, relative to the project")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--noise", type=float, default=3.0, help="noisy students: noise / tensor std (the start)")
    parser.add_argument("--weak-drop", type=float, default=0.05,
                        help="noisy students: double the noise until validation agreement with the teacher is "
                             "this much under the trained student's (0: the noise stays fixed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--champion", action="store_true",
                        help="judge every student also against the project's models/bundle as the champion")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gate-students-") as tmp:
        jobs = [("trained (the project's student)", None, None)]
        jobs += [(f"short seed {s}", "short", s) for s in args.seeds]
        jobs += [(f"noisy seed {s}", "noisy", s) for s in args.seeds]
        validation = ValidationAgreement(project, args.params) if args.weak_drop > 0 else None
        for i, (name, kind, seed) in enumerate(jobs):
            started = time.perf_counter()
            out = Path(tmp) / f"s{i}"
            out.mkdir()
            if kind is None:
                checkpoint = project / "models" / "student" / "checkpoint.pt"
            elif kind == "short":
                checkpoint = short_student(project, args.params, seed, out)
            else:
                checkpoint, info = noisy_student(project, seed, args.noise, out, args.weak_drop, validation)
                name = f"noisy x{info['noise']:g} seed {seed}"
                if "val_agreement" in info:
                    name += f" (validation agreement {info['val_agreement']:.3f} against {info['trained_val_agreement']:.3f})"
            try:
                champion = project / "models" / "bundle" if args.champion else None
                row = summary(name, export_and_evaluate(project, args.params, checkpoint, out, champion),
                              time.perf_counter() - started)
            except ExportRefused as exc:  # a failure too: this student never reaches the gate
                row = {"student": name, "accuracy": float("nan"), "teacher": float("nan"), "retention": float("nan"),
                       "paired_upper": float("nan"),
                       "passed": False, "checks": 0, "failing": 0, "failing_suites": ["export parity"],
                       "refused": str(exc), "seconds": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print(f"[{i + 1}/{len(jobs)}] {name}: {'PASSED' if row['passed'] else 'FAILED'} "
                  f"({row['seconds']} s)", file=sys.stderr, flush=True)
    print(f"\nproject {project.name}, params {args.params}, "
          f"{'champion: the project bundle' if args.champion else 'no champion'}, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| student | int8 accuracy | its bound paired with the teacher | teacher | share of teacher | gate | "
          "failing checks | failing suites |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("refused"):
            print(f"| {r['student']} | - | - | - | - | FAILED at export | - | {r['refused']} |")
            continue
        print(f"| {r['student']} | {r['accuracy']:.4f} | {r['paired_upper']:.4f} | {r['teacher']:.4f} | "
              f"{r['retention']:.1%} | "
              f"{'PASSED' if r['passed'] else 'FAILED'} | {r['failing']} of {r['checks']} | "
              f"{', '.join(r['failing_suites']) or '-'} |")
    weak = rows[1:]
    print(f"\nweak students failed: {sum(not r['passed'] for r in weak)} of {len(weak)}; "
          f"trained student {'passed' if rows[0]['passed'] else 'FAILED'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
