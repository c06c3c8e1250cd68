"""relu_ratio: CNNs whose convolution:ReLU ratio is N:M (Zhao et al., arXiv 1709.06247).

Example:
    >>> import relu_ratio
    >>> model = relu_ratio.models.build("preact164_32")   # Type 1 pre-act ResNet-164
    >>> print(relu_ratio.describe(model))                  # doctest: +SKIP
"""

from relu_ratio.startup import start_keras

start_keras()  # before anything imports keras: TensorFlow's C++ start-up lines stay off the terminal

from relu_ratio import models, patterns  # noqa: E402
from relu_ratio.describe import Description, describe  # noqa: E402
from relu_ratio.patterns import ReLUPattern  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Description", "ReLUPattern", "__version__", "describe", "models", "patterns"]
