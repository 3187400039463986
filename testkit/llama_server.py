"""A real llama.cpp server (PyPI xllamacpp) serving the embedded GGUF (or another) on 127.0.0.1, for the remote-backend
tests and the benches. It runs in a process of its own, so a test can kill it the way a crashed server dies.

    python -m testkit.llama_server PORT PARALLEL THREADS EMBEDDINGS(0/1)   # serves until killed (LlamaServer starts it)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx

from testkit import free_port

REPO = Path(__file__).resolve().parent.parent
SLOT_TOKENS = 2048  # context per parallel slot: the bench's longest conversations fit
REPEAT_PENALTY = 1.2  # config.toml's chat.generation.repetition_penalty, which the OpenAI API has no field for


class LlamaServer:
    """`python -m testkit.llama_server` in a child process; `url` is its OpenAI API root."""

    def __init__(self, port: int | None = None, parallel: int = 4, threads: int = 2, api_key: str = "",
                 embeddings: bool = True, gguf: Path | None = None):
        self.port, self.gguf = port or free_port(), gguf
        self.parallel, self.threads, self.api_key, self.embeddings = parallel, threads, api_key, embeddings
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> "LlamaServer":
        """Start it and wait until it answers /health."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "LLAMA_SERVER_API_KEY": self.api_key,
               "LLAMA_SERVER_GGUF": str(self.gguf or "")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "testkit.llama_server", str(self.port), str(self.parallel), str(self.threads),
             str(int(self.embeddings))],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited with {self.process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.kill()
        raise TimeoutError(f"the llama.cpp server on port {self.port} did not start in {timeout} s")

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would end it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


def on_server(config, url: str, **model):
    """`config` with its model read through the OpenAI-compatible server at `url` ([model] backend = "openai"), with
    any other [model] settings given."""
    return replace(config, model=replace(config.model, backend="openai", base_url=url, **model))


def configured_gguf(config) -> Path:
    """The GGUF file of [model] source, for a LlamaServer to serve; exits naming the source when it is none."""
    from bot.llm.loading import gguf_path

    gguf = gguf_path(config.model)
    if gguf is None:
        raise SystemExit(f"llama.cpp serves GGUF files; [model] source is {config.model.source}")
    return gguf


def serve(port: int, parallel: int, threads: int, embeddings: int) -> None:
    """llama.cpp's OpenAI-compatible server on the embedded GGUF (or $LLAMA_SERVER_GGUF), with embeddings (the last
    token's state, as the README starts llama-server: what the sentiment head reads) or not, until killed."""
    import xllamacpp

    from bot.llm.loading import embedded_gguf

    params = xllamacpp.CommonParams()
    params.model.path = os.environ.get("LLAMA_SERVER_GGUF") or str(embedded_gguf())
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_parallel = parallel
    params.n_ctx = SLOT_TOKENS * parallel
    if embeddings:  # /v1/embeddings as well as chat: one server for every role
        params.embedding = True
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_LAST
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.sampling.penalty_repeat = REPEAT_PENALTY
    if os.environ.get("LLAMA_SERVER_API_KEY"):
        params.api_keys = [os.environ["LLAMA_SERVER_API_KEY"]]
    server = xllamacpp.Server(params)  # serves on its own threads while this one waits
    threading.Event().wait()
    del server


if __name__ == "__main__":
    serve(*(int(arg) for arg in sys.argv[1:5]))
