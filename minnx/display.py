"""display: show a Module in a notebook, as an interactive tree when treescope is installed.

`print(model)` gives the text tree of objects.py: each Module's first line counts its state by
Variable type, e.g. `MLP( # Param: 165 (660 B), BatchStat: 32 (128 B), Total: ...`, and each
array is summarised as in the slides (dtype, shape, mean, standard deviation, range).
"""

def display(*nodes):
    """Show nodes: an interactive treescope view in a notebook when treescope is installed,
    else the text tree that `print` gives."""
    show = print
    try:
        import IPython
        import treescope
        if "IPKernelApp" in IPython.get_ipython().config:
            show = treescope.display
    except Exception:  # no IPython, no treescope, or not in a notebook kernel
        show = print
    for node in nodes:
        show(node)
