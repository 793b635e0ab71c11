"""params.yaml `evaluate` section: which suites score the models and the thresholds of the gate.

Every number the gate compares against lives here; the suites only measure. A suite's checks apply to
the models named in ``gate_models`` (the teacher is scored for reference, never gated).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from pipeline.config.base import Section

MODEL_NAMES = ("teacher", "student_fp32", "student_int8")


class GoldConfig(Section):
    """The gold test split (``split == "test"`` with labels), judged against the teacher on the same rows."""

    # The student's accuracy must reach the teacher's accuracy on the same rows minus this (its upper
    # bound paired with the teacher when confidence is set); null: no check against the teacher. 0.01 is
    # at least 1 % of any teacher's accuracy, so a student that keeps 99 % of its teacher always passes.
    teacher_tolerance: float | None = Field(default=0.01, ge=0.0, le=1.0)
    # Per class with at least min_class_rows test rows, the student's recall must reach the teacher's
    # recall on that class minus this (its upper bound when confidence is set); null: reported only.
    class_tolerance: float | None = Field(default=0.10, ge=0.0, le=1.0)
    # null: the values themselves are compared. A confidence (e.g. 0.9): against the teacher, the upper
    # bound of the student's accuracy paired with the teacher's answers on the same rows is (per class:
    # for all judged classes together), so a 15-row test split does not fail a student two rows behind
    # its teacher; absolute floors compare the student's one-sided Wilson bound.
    confidence: float | None = Field(default=0.9, gt=0.5, lt=1.0)
    # Absolute floors for the user to set (null: none): accuracy on the gold test split ...
    min_accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    # ... macro-F1 ...
    min_macro_f1: float | None = Field(default=None, ge=0.0, le=1.0)
    # ... and every class's recall (a model that drops one class fails here).
    min_class_recall: float | None = Field(default=None, ge=0.0, le=1.0)
    # Classes with fewer test rows than this are listed as too small to judge (with their counts, in the
    # report and as a warning) and left out of the per-class checks.
    min_class_rows: int = Field(default=5, ge=1)
    # Per class of the teacher's answers on the test split, the student must agree with the teacher on at
    # least 1 - this share (null: reported, with the worst classes named, but not gated).
    class_agreement_tolerance: float | None = Field(default=None, ge=0.0, le=1.0)


class AgreementConfig(Section):
    """Agreement with the teacher on held-out transfer rows the student never trained on."""

    # Lowest share of held-out transfer rows where the model and the teacher agree.
    min_agreement: float = Field(default=0.90, ge=0.0, le=1.0)
    # false: agreement is gated only when the test split has no gold labels; with gold, the gold suite
    # judges the student against the teacher on the same rows (on hard data a student as accurate as
    # its teacher errs on other rows than it does). true: gated always.
    gate_with_gold: bool = False
    # Score at most this many held-out rows.
    max_rows: int = Field(default=2000, ge=1)


class SlicesConfig(Section):
    """Data-derived slices of the test split, each scored like the gold suite."""

    # Column whose values define one slice each (e.g. the email group).
    group_column: str = "group"
    # Groups that get a slice of their own; empty = every group with at least min_rows test rows.
    groups: list[str] = Field(default_factory=lambda: ["hard-ham-1"])
    # Short texts: length <= this quantile of test lengths; long texts: length >= the upper one.
    length_quantiles: tuple[float, float] = (0.1, 0.9)
    # Classes whose share of the test split is below this form the "rare classes" slice.
    rare_class_share: float = Field(default=0.05, ge=0.0, le=1.0)
    # Slices smaller than this are reported but not gated.
    min_rows: int = Field(default=10, ge=1)
    # An absolute floor on every slice's gold accuracy, for the user to set (null: none).
    min_accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    # A slice's gold accuracy must reach the teacher's accuracy on the same rows minus this (both as
    # upper bounds when confidence is set); null: no check against the teacher.
    teacher_tolerance: float | None = Field(default=0.05, ge=0.0, le=1.0)
    # Lowest teacher agreement on every slice. null: a slice with gold labels is judged on accuracy
    # (min_accuracy and teacher_tolerance), one without on agreement >= agreement.min_agreement. A
    # student as accurate as its teacher on a slice may err on other rows than the teacher does.
    min_agreement: float | None = Field(default=None, ge=0.0, le=1.0)
    # null: a slice's accuracy/agreement must reach its floor. A confidence (e.g. 0.9): its one-sided
    # Wilson upper bound must, i.e. a slice fails when its rows show at that confidence that it is below.
    confidence: float | None = Field(default=0.9, gt=0.5, lt=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> "SlicesConfig":
        low, high = self.length_quantiles
        if not 0.0 < low < high < 1.0:
            raise ValueError(f"length_quantiles must satisfy 0 < low < high < 1, got {self.length_quantiles}")
        return self


def _default_perturbations() -> dict[str, dict[str, Any]]:
    """Noise that keeps any text's meaning. ``url`` and ``signature`` insert e-mail furniture; params.yaml
    adds them for the default e-mail data."""
    return {"typos": {"rate": 0.03}, "casing": {}, "whitespace": {}, "homoglyphs": {"rate": 0.1},
            "zero_width": {"rate": 0.1}, "truncate": {"keep": 0.6}, "emoji": {}}


class PerturbationsConfig(Section):
    """Generated perturbations of test texts: the student must answer as the teacher does on the same text."""

    # Perturbation name -> its keyword arguments (names from pipeline.evaluate.perturb's registry).
    kinds: dict[str, dict[str, Any]] = Field(default_factory=_default_perturbations)
    count: int = Field(default=200, ge=1)  # test texts sampled (seeded) per perturbation
    # On perturbed texts with gold labels, the student's accuracy must reach the teacher's on the same
    # perturbed texts minus this; without gold, its agreement with the teacher there must reach its own
    # agreement on the unperturbed texts minus this. null: no such check.
    teacher_tolerance: float | None = Field(default=0.05, ge=0.0, le=1.0)
    # null: the values themselves are compared; a confidence: the student's Wilson upper bound is.
    confidence: float | None = Field(default=0.9, gt=0.5, lt=1.0)
    # Perturbed texts with a gold label needed to judge accuracy; fewer: agreement is judged instead.
    min_gold_rows: int = Field(default=20, ge=1)
    # An absolute floor for the user to set (null: none): the share of perturbed texts where the model
    # answers as the teacher does on them.
    min_invariance: float | None = Field(default=None, ge=0.0, le=1.0)
    # Per-perturbation override of min_invariance, e.g. {truncate: 0.7}.
    min_invariance_by_kind: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_kinds(self) -> "PerturbationsConfig":
        from pipeline.evaluate import perturb

        unknown = sorted(set(self.kinds) - set(perturb.registered()))
        if unknown:
            raise ValueError(f"unknown perturbation(s) {', '.join(unknown)}; known: {', '.join(perturb.registered())}")
        odd = sorted(set(self.min_invariance_by_kind) - set(self.kinds))
        if odd:
            raise ValueError(f"min_invariance_by_kind names perturbations not in kinds: {', '.join(odd)}")
        return self


class OODConfig(Section):
    """Out-of-domain texts: the student should tell them from in-domain texts as well as its teacher does."""

    path: str = "suites/ood.txt"  # one text per line; '#' starts a comment line
    # A text passes when the model's max probability is below this ...
    max_confidence: float = Field(default=0.9, gt=0.0, le=1.0)
    # ... or, when set, when the model predicts this abstain label instead.
    abstain_label: str | None = None
    # Share of in-domain texts (the held-out validation slice) a model may reject as out-of-domain: each
    # model's own cut on its score (a student's in-domain score, the teacher's top probability) is set
    # so that this share of them falls below it.
    in_domain_reject_rate: float = Field(default=0.05, gt=0.0, lt=1.0)
    # Fewer held-out in-domain texts than this: no cut can be trusted, so recall is reported but not
    # gated, and no cut goes to the bundle (a warning says so).
    min_in_domain_rows: int = Field(default=50, ge=1)
    # The student's OOD recall at that in-domain reject rate may be at most this much below the
    # teacher's on the same texts (null: no such check). Recall at a fixed in-domain rate does not
    # depend on how confident a model is overall, so a two-class student as good as its teacher passes.
    teacher_tolerance: float | None = Field(default=0.1, ge=0.0, le=1.0)
    # An absolute floor as well: lowest share of out-of-domain texts handled as configured (null: none).
    min_pass_rate: float | None = Field(default=None, ge=0.0, le=1.0)


class UserSuitesConfig(Section):
    """Hand-written cases in suite files (docs/evaluation.md)."""

    # Suite files or folders (YAML or JSONL), relative to the project.
    paths: list[str] = Field(default_factory=lambda: ["suites/*.yaml", "suites/*.jsonl"])
    # Lowest share of user-written cases that must pass: your cases are your expectations, so this floor
    # is absolute (null: none).
    min_pass_rate: float | None = Field(default=0.8, ge=0.0, le=1.0)
    # Or as well: the share may be at most this much below the teacher's on the same cases (null: none).
    teacher_tolerance: float | None = Field(default=None, ge=0.0, le=1.0)


class CalibrationConfig(Section):
    """ECE before/after temperature scaling fitted on the held-out validation slice (never test)."""

    # Equal-width confidence bins of the expected calibration error.
    bins: int = Field(default=15, ge=2)
    # The ECE after temperature scaling (the temperature ships with the bundle) may exceed the teacher's
    # ECE on the same rows by at most this (null: no check against the teacher).
    teacher_tolerance: float | None = Field(default=0.05, ge=0.0, le=1.0)
    # An absolute ceiling on that ECE, for the user to set (null: none).
    max_ece: float | None = Field(default=None, ge=0.0, le=1.0)


class BudgetsConfig(Section):
    """Size and latency budgets of the served student."""

    # Models whose file size and latency are budgeted.
    models: list[str] = Field(default_factory=lambda: ["student_int8"])
    # Largest model file (MB).
    max_size_mb: float = Field(default=25.0, gt=0.0)
    # Slowest p95 single-text latency (ms), featurization included.
    max_p95_ms: float = Field(default=20.0, gt=0.0)
    # Timed single-text predictions.
    latency_runs: int = Field(default=200, ge=10)
    # Untimed predictions before timing.
    warmup_runs: int = Field(default=10, ge=0)


class ChampionConfig(Section):
    """Champion/challenger: no metric may drop more than its tolerance below the production model's."""

    alias: str = "production"  # registry alias of the champion, looked up when the registry exists
    bundle: str | None = None  # or an explicit bundle directory (wins over the alias)
    # Model compared with the production champion.
    challenger: str = "student_int8"
    # Largest allowed drop of any suite metric against the champion (per suite or metric prefix).
    tolerance: float = Field(default=0.02, ge=0.0)
    # Per-suite tolerances, keyed by suite name or its prefix (e.g. "perturb", "slice").
    tolerance_by_suite: dict[str, float] = Field(default_factory=dict)
    # Suites not compared against the champion (latency is noisy across runs).
    exclude: list[str] = Field(default_factory=lambda: ["budgets"])


class CascadeFitConfig(Section):
    """The serving cascade's confidence cut, fitted on the held-out slice (docs/serving.md, Cascade).

    The student answers when its calibrated top probability is at or above the cut, and hands the text
    to the teacher below it. The cut is chosen on held-out transfer rows (never test), stored in the
    registered bundle, and the gate report shows accuracy against deferral on the test split.
    """

    # Share of requests the student should hand to the teacher.
    target_deferral: float = Field(default=0.10, ge=0.0, le=1.0)
    # Or: the smallest deferral whose held-out agreement with the teacher reaches this (wins when set).
    target_agreement: float | None = Field(default=None, gt=0.0, le=1.0)
    # Deferral rates of the accuracy-against-deferral curve in the gate report.
    rates: list[float] = Field(default_factory=lambda: [0.0, 0.05, 0.10, 0.15, 0.20, 0.30])
    # Optional gate floor on the cascade's test accuracy as a share of the teacher's (null: reported only).
    min_retention: float | None = Field(default=None, gt=0.0)


class EvaluateConfig(Section):
    # Suites to run, by registry name (pipeline.evaluate.suites).
    suites: list[str] = Field(default_factory=lambda: ["gold", "agreement", "slices", "perturbations", "ood",
                                                       "user", "calibration", "cascade", "budgets"])
    # Models whose checks decide the gate (the teacher is scored for reference only).
    gate_models: list[str] = Field(default_factory=lambda: ["student_int8", "student_fp32"])
    # Seed of the generated perturbations.
    seed: int = 42
    # Teacher answers on generated texts go through the label stage's cache here.
    teacher_cache_dir: str = ".cache/labels"
    # Evaluate at most this many test rows and this many held-out transfer rows, chosen by a hash of the
    # row id (all of them when there are fewer), so the gate's time and memory stay bounded on large data.
    max_rows: int = Field(default=200_000, ge=1)
    gold: GoldConfig = Field(default_factory=GoldConfig)
    agreement: AgreementConfig = Field(default_factory=AgreementConfig)
    slices: SlicesConfig = Field(default_factory=SlicesConfig)
    perturbations: PerturbationsConfig = Field(default_factory=PerturbationsConfig)
    ood: OODConfig = Field(default_factory=OODConfig)
    user: UserSuitesConfig = Field(default_factory=UserSuitesConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    cascade: CascadeFitConfig = Field(default_factory=CascadeFitConfig)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    champion: ChampionConfig = Field(default_factory=ChampionConfig)

    @model_validator(mode="after")
    def _known_models(self) -> "EvaluateConfig":
        for name in [*self.gate_models, *self.budgets.models]:
            if name not in MODEL_NAMES:
                raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
        return self
