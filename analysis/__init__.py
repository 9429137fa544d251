"""Run directories -> pandas -> the papers' tables and figures. Reads only result.json files (the source of truth),
never W&B. Published numbers live in analysis/reference/."""
