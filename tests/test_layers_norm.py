"""LayerNorm, RMSNorm, GroupNorm, Embed and LinearGeneral on minnx and flax.nnx side by side: the
same parameters from the same seed, the same outputs for every axes/dtype configuration, and
clear errors (where flax raises too) for a learner's common mistakes."""

import warnings

import jax
import jax.numpy as jnp
import pytest
from flax import nnx as flax_nnx
from oracle import run_both

import minnx

X = jax.random.normal(jax.random.key(42), (2, 3, 4, 6)) * 3 + 1
LOOSE = {"rtol": 2e-2, "atol": 2e-2}  # bfloat16


def tol(kwargs):
    return (
        LOOSE
        if jnp.bfloat16 in (kwargs.get("dtype"), kwargs.get("param_dtype"))
        else {"rtol": 1e-5, "atol": 1e-5}
    )


def random_init(key, shape, dtype):  # non-trivial scale/bias, so that their use is checked
    return jax.random.uniform(key, shape, dtype, 0.5, 1.5)


def raises_both(build, exc, match):
    """`build(nnx)` raises `exc` in flax too, and minnx's message matches `match`."""
    with pytest.raises(exc, match=match):
        build(minnx)
    with warnings.catch_warnings(), pytest.raises(Exception):
        warnings.simplefilter("ignore")
        build(flax_nnx)


# -- LayerNorm and RMSNorm --------------------------------------------------------------------
NORM_CASES = [
    {},
    {"epsilon": 1e-2},
    {"use_bias": False},
    {"use_scale": False},
    {"use_bias": False, "use_scale": False},
    {"use_fast_variance": False},
    {"reduction_axes": (1, 2, 3)},
    {"reduction_axes": (-2, -1)},
    {"scale_init": random_init, "bias_init": random_init},
    {"dtype": jnp.bfloat16},
    {"param_dtype": jnp.bfloat16},
    {"dtype": jnp.float32, "param_dtype": jnp.bfloat16},
]


@pytest.mark.parametrize("kwargs", NORM_CASES)
def test_layernorm(kwargs):
    def body(nnx):
        layer = nnx.LayerNorm(6, rngs=nnx.Rngs(0), **kwargs)
        other = {} if "reduction_axes" in kwargs else {"y2d": layer(X[0, 0])}
        return {"params": nnx.state(layer), "y": layer(X), **other}

    run_both(body, **tol(kwargs))


@pytest.mark.parametrize(
    "kwargs",
    [c for c in NORM_CASES if "use_bias" not in c and "bias_init" not in c]
    + [{"scale_init": random_init}],
)
def test_rmsnorm(kwargs):
    def body(nnx):
        layer = nnx.RMSNorm(6, rngs=nnx.Rngs(0), **kwargs)
        other = {} if "reduction_axes" in kwargs else {"y2d": layer(X[0, 0])}
        return {"params": nnx.state(layer), "y": layer(X), **other}

    run_both(body, **tol(kwargs))


@pytest.mark.parametrize("layer_name", ["LayerNorm", "RMSNorm"])
def test_norm_over_several_feature_axes_with_mask(layer_name):
    def body(nnx):
        layer = getattr(nnx, layer_name)(
            24,
            reduction_axes=(-2, -1),
            feature_axes=(-2, -1),
            scale_init=random_init,
            rngs=nnx.Rngs(3),
        )
        mask = jax.random.bernoulli(jax.random.key(1), 0.7, X.shape)
        return {"params": nnx.state(layer), "y": layer(X), "masked": layer(X, mask=mask)}

    run_both(body, rtol=1e-5, atol=1e-5)


def test_norm_rng_draw_order_and_bfloat16_input():
    def body(nnx):
        rngs = nnx.Rngs(0)
        ln = nnx.LayerNorm(6, scale_init=random_init, bias_init=random_init, rngs=rngs)
        rms = nnx.RMSNorm(6, scale_init=random_init, rngs=rngs)
        gn = nnx.GroupNorm(
            6, num_groups=2, scale_init=random_init, bias_init=random_init, rngs=rngs
        )
        xb = X.astype(jnp.bfloat16)
        return {
            "ln": nnx.state(ln),
            "rms": nnx.state(rms),
            "gn": nnx.state(gn),
            "ys": [ln(xb), rms(xb), gn(xb)],
        }

    run_both(body, **LOOSE)


def test_norm_under_jit_and_grad():
    def body(nnx):
        model = nnx.Sequential(
            nnx.LayerNorm(6, rngs=nnx.Rngs(0)),
            nnx.RMSNorm(6, rngs=nnx.Rngs(1)),
            nnx.GroupNorm(6, num_groups=3, rngs=nnx.Rngs(2)),
        )

        def loss(m):
            return (m(X) * jnp.arange(6.0)).sum()

        return {"y": nnx.jit(lambda m: m(X))(model), "grads": nnx.grad(loss)(model)}

    run_both(body, rtol=1e-4, atol=1e-4)


def test_compute_stats_over_devices_matches_flax():
    """`axis_name` averages the raw moments over devices before forming the variance, as flax
    does."""
    from flax.nnx.nn.normalization import _compute_stats

    from minnx.nn.normalization import compute_stats

    xs = jax.random.normal(jax.random.key(0), (4, 3, 5)) + jnp.arange(4.0)[:, None, None]
    for kw in [{}, {"use_fast_variance": False}, {"use_mean": False}]:
        ours = jax.vmap(lambda x: compute_stats(x, (0, 1), axis_name="d", **kw), axis_name="d")(xs)
        theirs = jax.vmap(
            lambda x: _compute_stats(x, (0, 1), None, axis_name="d", **kw), axis_name="d"
        )(xs)
        for a, b in zip(ours, theirs):
            assert jnp.allclose(a, b, rtol=1e-5, atol=1e-6)


# -- GroupNorm ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_groups": 3},
        {"num_groups": 1},
        {"num_groups": 6},
        {"num_groups": None, "group_size": 2},
        {"num_groups": 2, "epsilon": 1e-1},
        {"num_groups": 2, "use_bias": False, "use_scale": False},
        {"num_groups": 2, "use_fast_variance": False},
        {"num_groups": 3, "reduction_axes": (1, 2, 3)},
        {"num_groups": 3, "reduction_axes": (-3, -2, -1)},
        {"num_groups": 2, "scale_init": random_init, "bias_init": random_init},
        {"num_groups": 3, "dtype": jnp.bfloat16},
        {"num_groups": 3, "param_dtype": jnp.bfloat16},
    ],
)
def test_groupnorm(kwargs):
    def body(nnx):
        layer = nnx.GroupNorm(6, rngs=nnx.Rngs(0), **kwargs)
        mask = jax.random.bernoulli(jax.random.key(1), 0.7, X.shape)
        other = {} if "reduction_axes" in kwargs else {"y3d": layer(X[0]), "y2d": layer(X[0, 0])}
        return {
            "params": nnx.state(layer),
            "y": layer(X),
            "masked": layer(X, mask=mask),
            "groups": [layer.num_groups, layer.group_size],
            **other,
        }

    run_both(body, **tol(kwargs))


def test_groupnorm_default_32_groups_and_layernorm_equivalence():
    def body(nnx):
        x = jax.random.normal(jax.random.key(0), (2, 5, 64))
        one = nnx.GroupNorm(64, num_groups=1, rngs=nnx.Rngs(0))(x)
        return {
            "y": nnx.GroupNorm(64, rngs=nnx.Rngs(0))(x),
            "one": one,
            "ln": nnx.LayerNorm(64, reduction_axes=(1, 2), rngs=nnx.Rngs(0))(x),
        }

    out = run_both(body, rtol=1e-5, atol=1e-5)
    assert jnp.allclose(out["one"], out["ln"], atol=1e-5)


# -- Embed ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"dtype": jnp.bfloat16},
        {"param_dtype": jnp.bfloat16},
        {"embedding_init": jax.nn.initializers.normal(0.02)},
    ],
)
def test_embed_lookup_and_attend(kwargs):
    def body(nnx):
        layer = nnx.Embed(10, 4, rngs=nnx.Rngs(0), **kwargs)
        ids = jnp.array([[0, 1, 9], [-1, -2, 3]])
        query = jax.random.normal(jax.random.key(1), (2, 3, 4))
        return {
            "params": nnx.state(layer),
            "y": layer(ids),
            "uint": layer(ids[0].astype(jnp.uint8)),
            "attend": layer.attend(query),
            "dtype": str(layer.dtype),
        }

    run_both(body, **tol(kwargs))


def test_embed_single_row_broadcasts_and_draw_order():
    def body(nnx):
        rngs = nnx.Rngs(0)
        a, b = nnx.Embed(1, 3, rngs=rngs), nnx.Embed(5, 3, rngs=rngs)
        return {"a": a(jnp.zeros((2, 2), jnp.int32)), "b": nnx.state(b)}

    run_both(body)


# -- LinearGeneral --------------------------------------------------------------------------------
X3 = jax.random.normal(jax.random.key(7), (4, 2, 3, 5))


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((5, 7), {}),
        ((5, (2, 7)), {}),
        (((3, 5), 7), {"axis": (-2, -1)}),
        (((2, 5), (3, 2)), {"axis": (1, 3)}),
        (
            ((2, 5), 6),
            {"axis": (-1, 1)},
        ),  # in_features follow the axes in increasing order, as in flax
        ((2, (3, 4)), {"axis": 1, "use_bias": False}),
        (((3, 5), 6), {"axis": (2, 3), "batch_axis": {0: 4}}),
        ((5, (2, 3)), {"batch_axis": {0: 4, 1: 2}}),
        ((5, 7), {"dtype": jnp.bfloat16}),
        ((5, 7), {"param_dtype": jnp.bfloat16}),
        ((5, 7), {"kernel_init": jax.nn.initializers.xavier_uniform(), "bias_init": random_init}),
        ((5, 7), {"precision": jax.lax.Precision.HIGHEST, "preferred_element_type": jnp.float32}),
    ],
)
def test_linear_general(args, kwargs):
    def body(nnx):
        layer = nnx.LinearGeneral(*args, rngs=nnx.Rngs(0), **kwargs)
        return {
            "params": nnx.state(layer),
            "y": layer(X3),
            "shapes": [layer.kernel.shape, None if layer.bias is None else layer.bias.shape],
        }

    run_both(body, **(tol(kwargs) if tol(kwargs) is LOOSE else {"rtol": 1e-5, "atol": 1e-5}))


def test_linear_general_equals_linear_and_draw_order():
    def body(nnx):
        rngs = nnx.Rngs(0)
        general, linear = (
            nnx.LinearGeneral(5, 3, rngs=nnx.Rngs(1)),
            nnx.Linear(5, 3, rngs=nnx.Rngs(1)),
        )
        two = [nnx.LinearGeneral((3, 5), (2, 2), axis=(-2, -1), rngs=rngs) for _ in range(2)]
        return {"general": general(X3), "linear": linear(X3), "two": [nnx.state(m) for m in two]}

    out = run_both(body, rtol=1e-5, atol=1e-5)
    assert jnp.allclose(out["general"], out["linear"])


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build, example",
    [
        (lambda nnx: nnx.LayerNorm(6), r"LayerNorm\(6, rngs=minnx.Rngs\(0\)\)"),
        (lambda nnx: nnx.RMSNorm(6), r"RMSNorm\(6, rngs=minnx.Rngs\(0\)\)"),
        (
            lambda nnx: nnx.GroupNorm(6, num_groups=3),
            r"GroupNorm\(6, num_groups=3, rngs=minnx.Rngs\(0\)\)",
        ),
        (lambda nnx: nnx.Embed(10, 4), r"Embed\(10, 4, rngs=minnx.Rngs\(0\)\)"),
        (
            lambda nnx: nnx.LinearGeneral(5, (2, 3)),
            r"LinearGeneral\(5, \(2, 3\), rngs=minnx.Rngs\(0\)\)",
        ),
    ],
)
def test_missing_rngs(build, example):
    raises_both(build, TypeError, r"needs `rngs=`.*" + example)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_groups": 4}, r"num_groups=4 does not divide num_features=6 .* e\.g\. num_groups=3"),
        ({}, r"num_groups=32 does not divide num_features=6 .* e\.g\. num_groups=6"),
        ({"num_groups": 0}, r"num_groups=0 does not divide num_features=6 .* e\.g\. num_groups=1"),
        (
            {"num_groups": None, "group_size": 4},
            r"group_size=4 does not divide num_features=6 .* e\.g\. group_size=3",
        ),
        ({"group_size": 2}, r"one of num_groups and group_size.*num_groups=None"),
        ({"num_groups": None}, r"one of num_groups and group_size"),
    ],
)
def test_groupnorm_bad_groups(kwargs, match):
    raises_both(lambda nnx: nnx.GroupNorm(6, rngs=nnx.Rngs(0), **kwargs), ValueError, match)


@pytest.mark.parametrize(
    "build, match",
    [
        (
            lambda nnx: nnx.LayerNorm(5, rngs=nnx.Rngs(0)),
            r"LayerNorm expected 5 features on feature_axes=-1, got an input of shape "
            r"\(2, 3, 4, 6\)\. Build it as LayerNorm\(6, \.\.\.\)",
        ),
        (
            lambda nnx: nnx.RMSNorm(12, feature_axes=(-2, -1), rngs=nnx.Rngs(0)),
            r"RMSNorm expected 12 features .* Build it as RMSNorm\(24, \.\.\.\)",
        ),
        (
            lambda nnx: nnx.GroupNorm(4, num_groups=2, rngs=nnx.Rngs(0)),
            r"GroupNorm expected inputs whose last axis \(features\) has size 4, got an input of "
            r"shape \(2, 3, 4, 6\)\. Build it as GroupNorm\(6, \.\.\.\)",
        ),
        (
            lambda nnx: nnx.LinearGeneral(4, 3, rngs=nnx.Rngs(0)),
            r"LinearGeneral expected .* \{3: 4\}, got an input of shape \(2, 3, 4, 6\)\. "
            r"Build it with in_features=\(6,\)",
        ),
        (
            lambda nnx: nnx.LinearGeneral(
                (3, 4), 3, axis=(1, 2), batch_axis={0: 5}, rngs=nnx.Rngs(0)
            ),
            r"LinearGeneral expected .* \{0: 5, 1: 3, 2: 4\}, got an input of shape \(2, 3, 4, 6\)",
        ),
        (
            lambda nnx: nnx.LinearGeneral(6, 3, axis=4, rngs=nnx.Rngs(0)),
            r"LinearGeneral expected .* \{4: 6\}, got an input of shape \(2, 3, 4, 6\)\. "
            r"Give axes that a 4-d input has",
        ),
    ],
)
def test_input_that_does_not_fit(build, match):
    def call(nnx):
        build(nnx)(X)

    raises_both(call, ValueError, match)


def test_norm_without_params_accepts_any_feature_size_as_flax_does():
    def body(nnx):
        return nnx.LayerNorm(5, use_bias=False, use_scale=False, rngs=nnx.Rngs(0))(X)

    run_both(body, rtol=1e-5, atol=1e-5)


def test_bad_constructor_and_input_errors():
    raises_both(
        lambda nnx: nnx.LinearGeneral((3, 4), 2, axis=-1, rngs=nnx.Rngs(0)),
        ValueError,
        r"in_features=\(3, 4\) and axis=\(-1,\)\. .* axis=\(-2, -1\)",
    )
    raises_both(
        lambda nnx: nnx.LinearGeneral(3, 2, batch_axis={1: 4}, rngs=nnx.Rngs(0)),
        ValueError,
        r"batch_axis must map the leading axes 0, 1, \.\.\. to their sizes, got \{1: 4\}",
    )
    raises_both(
        lambda nnx: nnx.Embed(10, 4, rngs=nnx.Rngs(0))(jnp.array([0.0, 1.0])),
        ValueError,
        r"Embed looks up integer ids, got an input of dtype float32.*astype",
    )
    raises_both(
        lambda nnx: nnx.Embed(10, 4, rngs=nnx.Rngs(0)).attend(jnp.ones((2, 3))),
        ValueError,
        r"Embed.attend expected .* size 4, got an input of shape \(2, 3\)",
    )


def test_groupnorm_with_reduction_axes_that_keep_a_non_batch_axis_is_correct():
    """A known difference: flax repeats the group statistics along axis 1, which scrambles them
    when the statistics are not (batch, groups); minnx repeats along the group axis."""
    x = X.reshape(2, 3, 4, 3, 2)
    mean, var = x.mean((2, 4), keepdims=True), x.var((2, 4), keepdims=True)
    expected = ((x - mean) / jnp.sqrt(var + 1e-6)).reshape(X.shape)
    y = minnx.GroupNorm(6, num_groups=3, reduction_axes=(2, 3), rngs=minnx.Rngs(0))(X)
    assert jnp.allclose(y, expected, atol=1e-5)


@pytest.mark.parametrize("name", ["LayerNorm", "RMSNorm", "GroupNorm", "Embed", "LinearGeneral"])
def test_signatures_take_flaxs_parameter_names(name):
    import inspect

    def named(cls):
        params = inspect.signature(cls.__init__).parameters
        return [k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    ours, theirs = named(getattr(minnx, name)), named(getattr(flax_nnx, name))
    assert set(ours) <= set(theirs), set(ours) - set(theirs)
    left_out = set(theirs) - set(ours) - {"dot_general_cls"}
    assert all(k.endswith("_metadata") for k in left_out), left_out

    def positional(names, cls):
        params = inspect.signature(cls.__init__).parameters
        return [k for k in names if params[k].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD]

    assert positional(ours, getattr(minnx, name)) == positional(theirs, getattr(flax_nnx, name))
