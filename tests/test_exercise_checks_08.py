"""The checks of exercises 8 (porting from PyTorch) refuse realistic wrong answers and accept other
correct ones, on minnx and on flax. Each wrong answer is a mistake a PyTorch user makes when
porting."""
import pytest

from course.grading import CheckFailed
from exercise_harness import run_exercise

NB = "08_porting_from_pytorch"
LIBS = ["minnx", "flax"]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("number", ["8.1", "8.2", "8.3", "8.4", "8.5"])
def test_the_solution_passes(lib, number):
    printed = run_exercise(NB, number, lib)
    assert "✅" in printed and "❌" not in printed, printed


# ---------------------------------------------------------------- 8.1: a Linear layer from PyTorch
LINEAR_RESHAPED = '''
def linear_from_torch(weight, bias, *, rngs):
    out_features, in_features = weight.shape
    layer = nnx.Linear(in_features, out_features, use_bias=bias is not None, rngs=rngs)
    layer.kernel[...] = jnp.asarray(weight.reshape(in_features, out_features))   # not a transpose
    if bias is not None:
        layer.bias[...] = jnp.asarray(bias)
    return layer
'''

LINEAR_ALWAYS_BIAS = '''
def linear_from_torch(weight, bias, *, rngs):
    out_features, in_features = weight.shape
    layer = nnx.Linear(in_features, out_features, rngs=rngs)
    layer.kernel[...] = jnp.asarray(weight.T)
    if bias is not None:
        layer.bias[...] = jnp.asarray(bias)
    return layer
'''

LINEAR_NOT_TRANSPOSED = '''
def linear_from_torch(weight, bias, *, rngs):
    out_features, in_features = weight.shape
    layer = nnx.Linear(in_features, out_features, use_bias=bias is not None, rngs=rngs)
    layer.kernel[...] = jnp.asarray(weight)
    if bias is not None:
        layer.bias[...] = jnp.asarray(bias)
    return layer
'''

LINEAR_THROUGH_INITIALISERS = '''
def linear_from_torch(weight, bias, *, rngs):
    out_features, in_features = weight.shape
    kernel = jnp.asarray(weight).T
    return nnx.Linear(in_features, out_features, use_bias=bias is not None, rngs=rngs,
                      kernel_init=lambda key, shape, dtype=jnp.float32: kernel,
                      bias_init=lambda key, shape, dtype=jnp.float32: jnp.asarray(bias))
'''


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("answer, words", [
    (LINEAR_RESHAPED, "only reshaped"),
    (LINEAR_ALWAYS_BIAS, "use_bias=False"),
    (LINEAR_NOT_TRANSPOSED, "transpose it"),
], ids=["reshaped", "always-a-bias", "not-transposed"])
def test_8_1_wrong_linears_are_refused(lib, answer, words):
    with pytest.raises(CheckFailed, match=words):
        run_exercise(NB, "8.1", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
def test_8_1_a_linear_built_through_its_initialisers_passes(lib):
    assert "❌" not in run_exercise(NB, "8.1", lib, [LINEAR_THROUGH_INITIALISERS])


# ---------------------------------------------------------------------- 8.2: a Conv2d from PyTorch
CONV_TEMPLATE = '''
def conv_from_torch(weight, bias, *, stride, padding, rngs):
    out_features, in_features, kh, kw = weight.shape
    conv = nnx.Conv(in_features, out_features, kernel_size=(kh, kw), strides=stride,
                    padding=PADDING, use_bias=bias is not None, rngs=rngs)
    conv.kernel[...] = jnp.asarray(KERNEL)
    if bias is not None:
        conv.bias[...] = jnp.asarray(bias)
    return conv
'''


def conv_answer(kernel="weight.transpose(2, 3, 1, 0)", padding="padding"):
    return CONV_TEMPLATE.replace("KERNEL", kernel).replace("PADDING", padding)


CONV_SAME_PADDING = conv_answer(padding='"SAME"')
CONV_RESHAPED = conv_answer(kernel="weight.reshape(kh, kw, in_features, out_features)")
CONV_WHIO = conv_answer(kernel="weight.transpose(3, 2, 1, 0)")
CONV_ALWAYS_BIAS = conv_answer().replace("use_bias=bias is not None, ", "")

CONV_PAIRS_AND_JNP = '''
def conv_from_torch(weight, bias, *, stride, padding, rngs):
    kernel = jnp.transpose(jnp.asarray(weight), (2, 3, 1, 0))
    conv = nnx.Conv(kernel.shape[2], kernel.shape[3], kernel_size=kernel.shape[:2],
                    strides=(stride, stride), padding=((padding, padding), (padding, padding)),
                    use_bias=bias is not None, rngs=rngs)
    conv.kernel[...] = kernel
    if bias is not None:
        conv.bias[...] = jnp.asarray(bias)
    return conv
'''


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("answer, words", [
    (CONV_SAME_PADDING, "'SAME' is not at stride 2"),
    (CONV_RESHAPED, "Check the kernel's axes"),
    (CONV_WHIO, "HWIO"),
    (CONV_ALWAYS_BIAS, "with bias=None, use_bias=False"),
], ids=["same-padding", "reshaped", "wrong-transpose", "always-a-bias"])
def test_8_2_wrong_convs_are_refused(lib, answer, words):
    with pytest.raises(CheckFailed, match=words):
        run_exercise(NB, "8.2", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
def test_8_2_explicit_padding_pairs_pass(lib):
    assert "❌" not in run_exercise(NB, "8.2", lib, [CONV_PAIRS_AND_JNP])


# ------------------------------------------------------------ 8.3: the first Linear after a flatten
FLATTEN_PLAIN_TRANSPOSE = '''
def flattened_kernel(weight, channels, height, width):
    return weight.T
'''

FLATTEN_WIDTH_FIRST = '''
def flattened_kernel(weight, channels, height, width):
    out_features = weight.shape[0]
    # (W, H, C)
    weight = weight.reshape(out_features, channels, height, width).transpose(0, 3, 2, 1)
    return weight.reshape(out_features, -1).T
'''

FLATTEN_WRONG_SPLIT = '''
def flattened_kernel(weight, channels, height, width):
    out_features = weight.shape[0]
    weight = weight.reshape(out_features, height, width, channels)   # splits as if PyTorch were HWC
    return weight.transpose(0, 1, 2, 3).reshape(out_features, -1).T
'''

FLATTEN_BY_INDEX = '''
def flattened_kernel(weight, channels, height, width):
    # for NNX's input position (h, w, c), the column PyTorch used: c * H * W + h * W + w
    order = (np.arange(channels * height * width).reshape(channels, height, width)
             .transpose(1, 2, 0).ravel())
    return jnp.asarray(weight)[:, order].T
'''


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("answer",
                         [FLATTEN_PLAIN_TRANSPOSE, FLATTEN_WIDTH_FIRST, FLATTEN_WRONG_SPLIT],
                         ids=["plain-transpose", "width-first", "wrong-split"])
def test_8_3_wrong_flatten_kernels_are_refused(lib, answer):
    with pytest.raises(CheckFailed, match="reordered from"):
        run_exercise(NB, "8.3", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
def test_8_3_a_kernel_made_by_indexing_passes(lib):
    assert "❌" not in run_exercise(NB, "8.3", lib, [FLATTEN_BY_INDEX])


# ------------------------------------------------------------------------------ 8.4: port the MLP
MLP_TEMPLATE = '''
class MLP(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(784, 128, rngs=rngs)
        self.norm = nnx.LayerNorm(128, EPSILON rngs=rngs)
        self.fc2 = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x):
        return self.fc2(GELU(self.norm(self.fc1(x))))


def load_mlp(weights):
    model = MLP(rngs=nnx.Rngs(0))
    model.fc1.kernel[...] = jnp.asarray(weights["fc1.weight"]TRANSPOSE)
    model.fc1.bias[...] = jnp.asarray(weights["fc1.bias"])
    model.norm.scale[...] = jnp.asarray(weights["norm.weight"])
    model.norm.bias[...] = jnp.asarray(weights["norm.bias"])
    model.fc2.kernel[...] = jnp.asarray(weights["fc2.weight"]TRANSPOSE)
    model.fc2.bias[...] = jnp.asarray(weights["fc2.bias"])
    return model
'''


def mlp_answer(epsilon="epsilon=1e-5,", gelu="jax.nn.gelu", transpose=".T"):
    source = MLP_TEMPLATE.replace("EPSILON", epsilon).replace("TRANSPOSE", transpose)
    if gelu == "jax.nn.gelu":   # the exact GELU, as the solution
        return source.replace("GELU(self.norm(self.fc1(x)))",
                              "jax.nn.gelu(self.norm(self.fc1(x)), approximate=False)")
    return source.replace("GELU", gelu)


MLP_DEFAULT_EPSILON = mlp_answer(epsilon="")
MLP_APPROXIMATE_GELU = mlp_answer(gelu="nnx.gelu")
MLP_NOT_TRANSPOSED = mlp_answer(transpose="")

MLP_EPSILON_OUTSIDE_THE_ROOT = '''
class MLP(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(784, 128, rngs=rngs)
        self.scale = nnx.Param(jnp.ones(128))
        self.shift = nnx.Param(jnp.zeros(128))
        self.fc2 = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x):
        h = self.fc1(x)
        # not sqrt(var + eps)
        h = (h - h.mean(-1, keepdims=True)) / (h.std(-1, keepdims=True) + 1e-5)
        h = h * self.scale[...] + self.shift[...]
        return self.fc2(jax.nn.gelu(h, approximate=False))


def load_mlp(weights):
    model = MLP(rngs=nnx.Rngs(0))
    model.fc1.kernel[...] = jnp.asarray(weights["fc1.weight"].T)
    model.fc1.bias[...] = jnp.asarray(weights["fc1.bias"])
    model.scale[...] = jnp.asarray(weights["norm.weight"])
    model.shift[...] = jnp.asarray(weights["norm.bias"])
    model.fc2.kernel[...] = jnp.asarray(weights["fc2.weight"].T)
    model.fc2.bias[...] = jnp.asarray(weights["fc2.bias"])
    return model
'''

MLP_BY_STATE = '''
import functools


class MLP(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(784, 128, rngs=rngs)
        self.norm = nnx.LayerNorm(128, epsilon=1e-5, rngs=rngs)
        self.act = functools.partial(nnx.gelu, approximate=False)
        self.fc2 = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x):
        return self.fc2(self.act(self.norm(self.fc1(x))))


def load_mlp(weights):
    model = MLP(rngs=nnx.Rngs(1))
    state = nnx.state(model)
    state.replace_by_pure_dict({
        "fc1": {"kernel": jnp.asarray(weights["fc1.weight"].T),
                "bias": jnp.asarray(weights["fc1.bias"])},
        "norm": {"scale": jnp.asarray(weights["norm.weight"]),
                 "bias": jnp.asarray(weights["norm.bias"])},
        "fc2": {"kernel": jnp.asarray(weights["fc2.weight"].T),
                "bias": jnp.asarray(weights["fc2.bias"])},
    })
    nnx.update(model, state)
    return model
'''


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("answer, words", [
    (MLP_DEFAULT_EPSILON, "epsilon is 1e-06; PyTorch's nn.LayerNorm uses 1e-5"),
    (MLP_APPROXIMATE_GELU, "nn.GELU\\(\\) is exact"),
    (MLP_NOT_TRANSPOSED, "transpose it"),
    (MLP_EPSILON_OUTSIDE_THE_ROOT, "its epsilon \\(1e-5\\)"),
], ids=["default-epsilon", "approximate-gelu", "not-transposed", "epsilon-outside-the-root"])
def test_8_4_wrong_mlp_ports_are_refused(lib, answer, words):
    with pytest.raises(CheckFailed, match=words):
        run_exercise(NB, "8.4", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
def test_8_4_a_port_through_the_state_passes(lib):
    assert "❌" not in run_exercise(NB, "8.4", lib, [MLP_BY_STATE])


# ----------------------------------------------------------------------------- 8.5: port the LSTM
LSTM_TEMPLATE = '''
def lstm_cell_from_torch(weight_ih, weight_hh, bias_ih, bias_hh, *, rngs):
    hidden, in_features = weight_hh.shape[1], weight_ih.shape[1]
    cell = nnx.LSTMCell(in_features, hidden, rngs=rngs)
    for block, gate in enumerate("ORDER"):
        rows = slice(block * hidden, (block + 1) * hidden)
        input_layer = {"i": cell.ii, "f": cell.if_, "g": cell.ig, "o": cell.io}[gate]
        hidden_layer = {"i": cell.hi, "f": cell.hf, "g": cell.hg, "o": cell.ho}[gate]
        input_layer.kernel[...] = jnp.asarray(weight_ih[rows].T)
        hidden_layer.kernel[...] = jnp.asarray(weight_hh[rows]HH_TRANSPOSE)
        hidden_layer.bias[...] = jnp.asarray(BIAS)
    return cell
'''


def lstm_answer(order="ifgo", hh_transpose=".T", bias="bias_ih[rows] + bias_hh[rows]"):
    return (LSTM_TEMPLATE.replace("ORDER", order).replace("HH_TRANSPOSE", hh_transpose)
            .replace("BIAS", bias))


LSTM_ONE_BIAS = lstm_answer(bias="bias_hh[rows]")
LSTM_IFOG = lstm_answer(order="ifog")
LSTM_HH_NOT_TRANSPOSED = lstm_answer(hh_transpose="")

LSTM_BY_SPLIT = '''
def lstm_cell_from_torch(weight_ih, weight_hh, bias_ih, bias_hh, *, rngs):
    cell = nnx.LSTMCell(weight_ih.shape[1], weight_hh.shape[1], rngs=rngs)
    kernels_i = jnp.split(jnp.asarray(weight_ih).T, 4, axis=1)       # i, f, g, o
    kernels_h = jnp.split(jnp.asarray(weight_hh).T, 4, axis=1)
    biases = jnp.split(jnp.asarray(bias_ih) + jnp.asarray(bias_hh), 4)
    for name, k_i, k_h, b in zip(["i", "f", "g", "o"], kernels_i, kernels_h, biases):
        getattr(cell, "if_" if name == "f" else "i" + name).kernel[...] = k_i
        getattr(cell, "h" + name).kernel[...] = k_h
        getattr(cell, "h" + name).bias[...] = b
    return cell
'''


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("answer", [LSTM_ONE_BIAS, LSTM_IFOG, LSTM_HH_NOT_TRANSPOSED],
                         ids=["one-bias", "gate-order-ifog", "hh-not-transposed"])
def test_8_5_wrong_lstm_ports_are_refused(lib, answer):
    with pytest.raises(CheckFailed, match="bias_ih \\+ bias_hh"):
        run_exercise(NB, "8.5", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
def test_8_5_a_port_with_jnp_split_passes(lib):
    assert "❌" not in run_exercise(NB, "8.5", lib, [LSTM_BY_SPLIT])
