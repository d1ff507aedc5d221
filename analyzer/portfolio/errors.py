"""The investor commands' one error: a bad portfolio file, argument, or market state."""


class PortfolioError(Exception):
    """One line for the user (exit status 2): a bad value named by its key, an unknown asset, a
    venue without a hedging instrument, impossible leverage, data too old (with its age)."""
