"""The one error type the data layer raises for bad input: what was wrong, where, what to do."""


class DataError(ValueError):
    """Input that is not a readable TNG snapshot, catalog, cutout or run directory.

    The message always names the offending path (and field or id where one applies) and says what
    the user can do about it.
    """
