"""Conv, ConvTranspose and pooling on minnx and flax.nnx side by side: the same parameters from the
same seed, the same outputs for every padding mode, stride, dilation, grouping, mask and dtype, and
errors that name the layer and say how to fix the input (channels last, not PyTorch's NCHW)."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx as flax_nnx
from oracle import run_both

import minnx


def x_of(*shape, seed=1):
    return jax.random.normal(jax.random.key(seed), shape)


X1, X2, X3 = x_of(2, 11, 3), x_of(2, 9, 8, 3), x_of(2, 6, 5, 7, 3)
LOOSE = {"rtol": 2e-2, "atol": 2e-2}  # bfloat16 and convolutions that sum many terms

CONV_CASES = [
    # (input, kernel_size, kwargs)
    (X1, 3, {}),
    (X1, (4,), {"padding": "VALID"}),
    (X1, 3, {"padding": "CAUSAL"}),
    (X2, (3, 3), {}),
    (X2, (3, 2), {"padding": "VALID"}),
    (X2, (3, 3), {"padding": "CIRCULAR"}),
    (X2, (4, 3), {"padding": "CIRCULAR", "kernel_dilation": 2}),
    (X2, (3, 3), {"padding": "REFLECT"}),
    (X2, (3, 3), {"padding": 2}),
    (X2, (3, 3), {"padding": [1, 0]}),
    (X2, (3, 3), {"padding": [(2, 0), (1, 3)]}),
    (X2, (3, 3), {"padding": ((0, 1), 2)}),
    (X2, (3, 3), {"strides": 2}),
    (X2, (3, 3), {"strides": (2, 3)}),
    (X2, (3, 3), {"strides": 2, "padding": "VALID"}),
    (X2, (3, 3), {"strides": None}),
    (X2, (3, 3), {"kernel_dilation": 2}),
    (X2, (2, 3), {"kernel_dilation": (1, 3), "padding": "VALID"}),
    # lax takes input_dilation with explicit padding only
    (X2, (3, 3), {"input_dilation": 2, "padding": 0}),
    (X2, (3, 3), {"input_dilation": (2, 1), "strides": 2, "padding": 1}),
    (X1, 3, {"input_dilation": 3, "padding": [(2, 1)], "kernel_dilation": 2}),
    (X2, (3, 3), {"use_bias": False}),
    (X2, (3, 3), {"precision": jax.lax.Precision.HIGHEST}),
    (
        X2,
        (3, 3),
        {
            "kernel_init": jax.nn.initializers.xavier_uniform(),
            "bias_init": jax.nn.initializers.normal(1.0),
        },
    ),
    (X3, (3, 3, 3), {}),
    (X3, (2, 3, 2), {"padding": "VALID", "strides": 2}),
    (X3, (3, 3, 3), {"padding": "CIRCULAR"}),
    (X2[0], (3, 3), {}),
    (X2[0], (3, 3), {"padding": "CIRCULAR"}),
    (X1[0], 3, {"strides": 2}),
    (x_of(2, 3, 7, 6, 3), (3, 3), {}),  # two batch axes
]


@pytest.mark.parametrize("x, kernel_size, kwargs", CONV_CASES)
def test_conv(x, kernel_size, kwargs):
    def body(nnx):
        layer = nnx.Conv(3, 4, kernel_size, rngs=nnx.Rngs(0), **kwargs)
        return {"params": nnx.state(layer), "y": layer(x), "kernel_shape": layer.kernel_shape}

    run_both(body, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups, out", [(3, 6), (3, 3), (1, 6)])
def test_conv_feature_groups(groups, out):
    x = x_of(2, 7, 7, 6)

    def body(nnx):
        layer = nnx.Conv(6, out, (3, 3), feature_group_count=groups, rngs=nnx.Rngs(2))
        return {"params": nnx.state(layer), "y": layer(x)}

    run_both(body, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layer_name", ["Conv", "ConvTranspose"])
def test_masked_kernel(layer_name):
    mask = jnp.tril(jnp.ones((3, 3)))[:, :, None, None] * jnp.ones((3, 3, 3, 4))

    def body(nnx):
        layer = getattr(nnx, layer_name)(3, 4, (3, 3), mask=mask, padding="VALID", rngs=nnx.Rngs(0))
        return {"state": nnx.state(layer), "y": layer(X2)}

    run_both(body, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dtype": jnp.bfloat16},
        {"param_dtype": jnp.bfloat16},
        {"dtype": jnp.bfloat16, "param_dtype": jnp.bfloat16},
        {"dtype": jnp.float32, "param_dtype": jnp.bfloat16},
    ],
)
@pytest.mark.parametrize("layer_name", ["Conv", "ConvTranspose"])
def test_bfloat16(layer_name, kwargs):
    def body(nnx):
        layer = getattr(nnx, layer_name)(3, 4, (3, 3), strides=2, rngs=nnx.Rngs(0), **kwargs)
        return {
            "params": nnx.state(layer),
            "y": layer(X2),
            "y_bf16_input": layer(X2.astype(jnp.bfloat16)),
        }

    run_both(body, **LOOSE)


def test_preferred_element_type():
    def body(nnx):
        x = X2.astype(jnp.bfloat16)
        conv = nnx.Conv(
            3,
            4,
            (3, 3),
            param_dtype=jnp.bfloat16,
            preferred_element_type=jnp.float32,
            rngs=nnx.Rngs(0),
        )
        up = nnx.ConvTranspose(
            3,
            4,
            (3, 3),
            param_dtype=jnp.bfloat16,
            preferred_element_type=jnp.float32,
            rngs=nnx.Rngs(0),
        )
        return [conv(x), up(x)]

    run_both(body, **LOOSE)


def test_consecutive_layers_draw_from_one_rngs_in_flaxs_order():
    def body(nnx):
        rngs = nnx.Rngs(0)
        return [
            nnx.state(nnx.Conv(3, 4, (3, 3), rngs=rngs)),
            nnx.state(nnx.ConvTranspose(4, 2, 3, rngs=rngs)),
            nnx.state(nnx.Conv(2, 2, 3, use_bias=False, rngs=rngs)),
            nnx.state(nnx.Linear(2, 2, rngs=rngs)),
        ]

    run_both(body)


TRANSPOSE_CASES = [
    (X1, 3, {}),
    (X1, 4, {"strides": 2, "padding": "VALID"}),
    (X1, 3, {"strides": 3, "padding": "CIRCULAR"}),
    (X2, (3, 3), {}),
    (X2, (3, 3), {"strides": 2}),
    (X2, (4, 4), {"strides": (2, 1), "padding": "VALID"}),
    (X2, (3, 3), {"strides": 2, "padding": "CIRCULAR"}),
    (X2, (4, 3), {"strides": 2, "padding": "CIRCULAR"}),
    (X2, (4, 3), {"strides": 2, "padding": "CIRCULAR", "transpose_kernel": True}),
    (X2, (3, 3), {"padding": 1}),
    (X2, (3, 3), {"strides": 2, "padding": [(2, 1), (0, 2)]}),
    (X2, (3, 3), {"padding": [2, 0]}),
    (X2, (3, 3), {"kernel_dilation": 2}),
    (X2, (3, 3), {"kernel_dilation": (2, 1), "strides": 2, "padding": "VALID"}),
    (X2, (3, 3), {"transpose_kernel": True}),
    (X2, (3, 2), {"transpose_kernel": True, "strides": 2}),
    (X2, (3, 3), {"use_bias": False, "strides": 2}),
    (X3, (2, 2, 2), {"strides": 2}),
    (X2[0], (3, 3), {"strides": 2}),
    (x_of(2, 3, 7, 6, 3), (3, 3), {"strides": 2}),
]


@pytest.mark.parametrize("x, kernel_size, kwargs", TRANSPOSE_CASES)
def test_conv_transpose(x, kernel_size, kwargs):
    def body(nnx):
        layer = nnx.ConvTranspose(3, 4, kernel_size, rngs=nnx.Rngs(0), **kwargs)
        return {"params": nnx.state(layer), "y": layer(x), "kernel_shape": layer.kernel_shape}

    run_both(body, rtol=1e-5, atol=1e-5)


def test_conv_then_conv_transpose_restores_the_shape():
    def body(nnx):
        rngs = nnx.Rngs(0)
        down = nnx.Conv(3, 8, (4, 4), strides=2, padding=1, rngs=rngs)
        up = nnx.ConvTranspose(8, 3, (4, 4), strides=2, padding=2, rngs=rngs)
        x = x_of(2, 8, 8, 3)
        return {"down": down(x), "up": up(down(x))}

    assert run_both(body, rtol=1e-5, atol=1e-5)["up"].shape == (2, 8, 8, 3)


def test_grad_through_conv_and_pooling():
    def body(nnx):
        model = nnx.Conv(3, 4, (3, 3), rngs=nnx.Rngs(0))
        graphdef, params = nnx.split(model)

        def loss(params):
            y = nnx.merge(graphdef, params)(X2)
            return (nnx.avg_pool(nnx.max_pool(y, (2, 2), (2, 2)), (2, 2)) ** 2).sum()

        return jax.grad(loss)(params)

    run_both(body, rtol=1e-5, atol=1e-5)


POOL_CASES = [
    (X2, (2, 2), None, "VALID"),
    (X2, (2, 2), (2, 2), "VALID"),
    (X2, (3, 3), (2, 2), "SAME"),
    (X2, (3, 2), (1, 2), "SAME"),
    (X2, (3, 3), (2, 2), ((1, 1), (0, 2))),
    (X2, (2, 2), (1, 1), [(1, 0), (0, 1)]),
    (X2, (2, 2), (2, 1), "VALID"),
    (X1, (3,), (2,), "SAME"),
    (X1, (2,), None, ((1, 2),)),
    (X3, (2, 2, 2), (2, 2, 2), "VALID"),
    (X3, (3, 1, 2), (1, 2, 2), "SAME"),
    (X2[0], (2, 2), (2, 2), "VALID"),
    (X2[0], (3, 3), (2, 2), ((1, 1), (1, 1))),
    (X2[0, :, :, 0], (2,), None, "SAME"),
    (x_of(2, 3, 7, 6, 3), (2, 2), (2, 2), "SAME"),
]


@pytest.mark.parametrize("x, window, strides, padding", POOL_CASES)
def test_pooling(x, window, strides, padding):
    def body(nnx):
        out = {
            "max": nnx.max_pool(x, window, strides, padding),
            "min": nnx.min_pool(x, window, strides, padding),
            "avg": nnx.avg_pool(x, window, strides, padding),
            "pool_prod": nnx.pool(x, 1.0, jax.lax.mul, window, strides, padding),
            "avg_without_pad": nnx.avg_pool(x, window, strides, padding, count_include_pad=False),
        }
        return out

    run_both(body, rtol=1e-5, atol=1e-5)


def test_pooling_keyword_arguments_and_dtypes():
    def body(nnx):
        x = X2.astype(jnp.bfloat16)
        return [
            nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="SAME"),
            nnx.avg_pool(x, (3, 3), padding="SAME"),
            nnx.avg_pool(x, (3, 3), padding="SAME", count_include_pad=False),
            nnx.min_pool(inputs=X2, window_shape=(2, 2)),
        ]

    run_both(body, **LOOSE)


# -- errors: minnx names the layer, says what it expected and got, and how to fix it; flax raises
# too --
def raises_on_both(body, error, match, flax_error=Exception):
    with pytest.raises(error, match=match):
        body(minnx)
    with pytest.raises(flax_error):
        body(flax_nnx)


def test_conv_on_channels_first_input_suggests_a_transpose():
    def body(nnx):
        return nnx.Conv(3, 8, (3, 3), rngs=nnx.Rngs(0))(jnp.ones((2, 3, 32, 32)))

    raises_on_both(
        body,
        ValueError,
        r"minnx\.Conv expected inputs whose last axis \(channels\) has size 3, got an "
        r"input of shape \(2, 3, 32, 32\)\. NNX wants channels last \(NHWC\), unlike PyTorch's "
        r"NCHW: this input looks channels-first, so pass x\.transpose\(0, 2, 3, 1\)\.",
        ValueError,
    )
    raises_on_both(
        lambda nnx: nnx.Conv(3, 8, 3, rngs=nnx.Rngs(0))(jnp.ones((3, 10))),
        ValueError,
        r"\(channels\) has size 3, got an input of shape \(3, 10\)\. NNX wants channels last "
        r"\(NWC\), unlike PyTorch's NCW: this input looks channels-first, so pass "
        r"x\.transpose\(1, 0\)\.",
    )
    raises_on_both(
        lambda nnx: nnx.ConvTranspose(3, 8, (2, 2, 2), rngs=nnx.Rngs(0))(jnp.ones((1, 3, 4, 4, 4))),
        ValueError,
        r"minnx\.ConvTranspose expected .* NNX wants channels last \(NDHWC\), unlike "
        r"PyTorch's NCDHW: .* x\.transpose\(0, 2, 3, 4, 1\)\.",
    )


def test_conv_with_the_wrong_channel_count_says_how_to_build_it():
    def body(nnx):
        return nnx.Conv(3, 8, (3, 3), rngs=nnx.Rngs(0))(jnp.ones((2, 32, 32, 5)))

    raises_on_both(
        body,
        ValueError,
        r"minnx\.Conv expected inputs whose last axis \(channels\) has size 3, got an "
        r"input of shape \(2, 32, 32, 5\)\. NNX wants channels last .* build the layer as "
        r"Conv\(5, 8, \.\.\.\)\.",
        ValueError,
    )


def test_single_channel_images_without_a_channel_axis():
    def body(nnx):
        return nnx.Conv(1, 8, (3, 3), rngs=nnx.Rngs(0))(jnp.ones((16, 28, 28)))

    raises_on_both(
        body,
        ValueError,
        r"minnx\.Conv expected inputs whose last axis \(channels\) has size 1, got an "
        r"input of shape \(16, 28, 28\)\. .* to add the missing channel axis, "
        r"pass x\[\.\.\., None\]\.",
    )


def test_conv_input_with_too_few_axes():
    def body(nnx):
        return nnx.Conv(1, 8, (3, 3), rngs=nnx.Rngs(0))(jnp.ones((28, 28)))

    raises_on_both(
        body,
        ValueError,
        r"minnx\.Conv with a 2D kernel expected inputs NHWC \(or HWC for one example\), "
        r"got shape \(28, 28\)\.",
    )


@pytest.mark.parametrize("layer_name", ["Conv", "ConvTranspose"])
def test_conv_without_rngs(layer_name):
    raises_on_both(
        lambda nnx: getattr(nnx, layer_name)(3, 8, (3, 3)),
        TypeError,
        rf"minnx\.{layer_name} needs `rngs=`.*"
        rf"{layer_name}\(3, 8, \(3, 3\), rngs=minnx\.Rngs\(0\)\)",
        TypeError,
    )


@pytest.mark.parametrize("layer_name", ["Conv", "ConvTranspose"])
def test_mask_of_the_wrong_shape(layer_name):
    def body(nnx):
        return getattr(nnx, layer_name)(3, 8, (3, 3), mask=jnp.ones((3, 3)), rngs=nnx.Rngs(0))(X2)

    raises_on_both(
        body,
        ValueError,
        rf"minnx\.{layer_name} got a mask of shape \(3, 3\), but its kernel has shape "
        r"\(3, 3, 3, 8\): give it that shape\.",
        ValueError,
    )


@pytest.mark.parametrize("in_features, out_features", [(4, 6), (6, 4)])
def test_feature_groups_that_do_not_divide(in_features, out_features):
    def body(nnx):
        return nnx.Conv(in_features, out_features, (3, 3), feature_group_count=3, rngs=nnx.Rngs(0))(
            jnp.ones((1, 5, 5, in_features))
        )

    raises_on_both(
        body,
        ValueError,
        rf"minnx\.Conv with feature_group_count=3 needs in_features \({in_features}\) "
        rf"and out_features \({out_features}\) to be multiples of it\.",
    )


@pytest.mark.parametrize("padding", [[1, 2, 3], [(1, 2, 3), 1], "SAME_ISH"])
def test_bad_padding(padding):
    def body(nnx):
        return nnx.Conv(3, 4, (3, 3), padding=padding, rngs=nnx.Rngs(0))(X2)

    if (
        padding == "SAME_ISH"
    ):  # lax's own error: "Unrecognized padding type: expected 'VALID', 'SAME', ..."
        raises_on_both(body, RuntimeError, "Unrecognized padding type.*SAME_ISH")
    else:
        raises_on_both(
            body,
            ValueError,
            r"Invalid padding .* for a 2D convolution: use 'SAME', 'VALID', 'CIRCULAR', "
            r"an int, or 2 ints or \(low, high\) pairs\.",
        )


@pytest.mark.parametrize(
    "x, window, strides",
    [(X2, 2, None), (X2, (2, 2), 2), (X2[0, 0], (2, 2), None), (X2, (2, 2), (1, 1, 1))],
)
def test_pooling_with_a_bad_window(x, window, strides):
    raises_on_both(
        lambda nnx: nnx.max_pool(x, window, strides),
        ValueError,
        r"pool expected inputs \(batch\.\.\., \*window axes, features\) and window_shape, "
        r"strides as tuples like \(2, 2\), got inputs of shape",
    )
