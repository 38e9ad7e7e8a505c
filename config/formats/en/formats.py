"""English pages keep the dates as they are written in Ukraine (27.11.2026) and 24-hour times, the
Ukrainian formats themselves (numbers keep English separators): the same records read the same in
either language, and in the documents handed over."""

from config.formats.uk.formats import (  # noqa: F401 Django reads these names from this module
    DATE_FORMAT,
    DATE_INPUT_FORMATS,
    DATETIME_FORMAT,
    DATETIME_INPUT_FORMATS,
    FIRST_DAY_OF_WEEK,
    MONTH_DAY_FORMAT,
    SHORT_DATE_FORMAT,
    SHORT_DATETIME_FORMAT,
    TIME_FORMAT,
    YEAR_MONTH_FORMAT,
)
