"""Keep TensorFlow's native start-up lines off the terminal (they read like failures to a new user).

Importing TensorFlow prints C++ log lines that no environment variable silences in TF 2.21 ("All log
messages before absl::InitializeLog()", "oneDNN custom operations are on", "failed call to cuInit" on a
machine without a GPU...). :func:`quiet_native_stderr` sends file descriptor 2 to a temporary file while
Keras and TensorFlow start, then writes back every line that is not one of these known start-up lines, so a
real error still shows (CUDA lines are dropped only on machines without an NVIDIA driver, where they can
only mean "no GPU"). The command-line entry points (``python -m relu_ratio.train``, ``.tune``, ``.queue``,
``.experiments``, ``.zoo``, ``.demo``) do this once, when ``relu_ratio`` is imported before TensorFlow
(Python imports the package before it runs the module, so it is done there, for :func:`cli_module` only). A
library import (``import relu_ratio`` in a user's application) leaves file descriptor 2 and TensorFlow alone.
A native crash during that import would lose what it printed: ``RELU_RATIO_TF_LOGS=1`` turns the filter off.

Example:
    >>> with quiet_native_stderr():
    ...     import keras
    >>> cli_module(["python", "-m", "relu_ratio.train", "--help"])
    'relu_ratio.train'
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence

_ALWAYS = (
    r"absl::InitializeLog|oneDNN custom operations are on|cpu_feature_guard|To enable the following "
    r"instructions|Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning|computation_placer"
)
_NO_GPU = r"|cudart_stub|cuda_platform|failed call to cuInit"  # noise only where there is no NVIDIA driver
START_UP_LINES = re.compile(_ALWAYS + ("" if os.path.exists("/dev/nvidiactl") else _NO_GPU))


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Within the block, native and Python writes to stderr are held; on exit all but the known TensorFlow
    start-up lines (:data:`START_UP_LINES`) are written to stderr. Where stderr is not a real file
    descriptor (``pythonw``, some notebook hosts) or no temporary file can be made, nothing is held."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        sink = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the `with sink` below)
    except (AttributeError, OSError, ValueError):
        yield
        return
    with sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines(keepends=True):
                if not START_UP_LINES.search(line):
                    sys.stderr.write(line)


_OPTION_VALUES = ("-W", "-X")  # interpreter options whose value is the next argument


def cli_module(argv: Sequence[str] | None = None) -> str | None:
    """The ``relu_ratio`` module this process was started as (``python -m relu_ratio.zoo list`` gives
    ``"relu_ratio.zoo"``), read from the interpreter's own command line (``sys.orig_argv``, or ``argv``);
    ``None`` for a script, ``-c`` or another module (``python -m pytest``, a user's application)."""
    argv = list(sys.orig_argv if argv is None else argv)[1:]
    while argv and argv[0].startswith("-") and not argv[0].startswith(("-m", "-c")):
        argv = argv[2:] if argv[0] in _OPTION_VALUES else argv[1:]
    if not argv or not argv[0].startswith("-m"):
        return None
    module = argv[0][2:] or (argv[1] if len(argv) > 1 else "")
    return module if module.split(".")[0] == "relu_ratio" else None


def start_keras() -> None:
    """Import Keras (and TensorFlow and its device list, where that is the backend) without the noise."""
    if "tensorflow" in sys.modules or os.environ.get("RELU_RATIO_TF_LOGS") == "1":
        return
    with quiet_native_stderr():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA start-up lines come here, not at import
