"""display: show a Module in a notebook, as an interactive tree when treescope is installed.

Elsewhere it prints the text tree of objects.py, each Module's state counted by Variable type.
"""
try:
    import IPython
    import treescope
except ImportError:  # outside a notebook environment: print instead
    IPython = treescope = None

def display(*nodes):
    """Show nodes: treescope's interactive view in a notebook kernel, else `print`'s text tree."""
    shell = IPython.get_ipython() if IPython else None
    in_kernel = shell is not None and "IPKernelApp" in shell.config
    for node in nodes:
        if in_kernel and treescope is not None:
            treescope.display(node)
        else:
            print(node)
