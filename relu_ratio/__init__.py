"""relu_ratio: CNNs whose convolution:ReLU ratio is N:M (Zhao et al., arXiv 1709.06247).

Example:
    >>> import relu_ratio
    >>> model = relu_ratio.models.build("preact164_32")   # Type 1 pre-act ResNet-164
    >>> print(relu_ratio.describe(model))                  # doctest: +SKIP
"""

from relu_ratio import startup

if startup.cli_module():  # a `python -m relu_ratio.*` command, before anything imports keras: TensorFlow's
    startup.start_keras()  # C++ start-up lines stay off its terminal (a library import leaves stderr alone)

# The package's Keras classes (the checked zoo model, the fused model's layers, the training copy's kernels,
# schedules and augmentation) are registered for keras.saving.load_model by importing their modules: a .keras
# file of a model that nests a zoo model, or of a fused or training model, loads after `import relu_ratio`.
from relu_ratio import fuse as _fuse  # noqa: F401  (fuse imports inputs and train)
from relu_ratio import models, patterns
from relu_ratio.describe import Description, describe
from relu_ratio.patterns import ReLUPattern

__version__ = "0.1.0"

__all__ = ["Description", "ReLUPattern", "__version__", "describe", "models", "patterns"]
