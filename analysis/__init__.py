"""Run directories -> pandas -> the papers' tables and figures. Reads run directories only through the `record`
package (the source of truth), never W&B, and imports no training code (tests/test_architecture.py). Published
numbers live in analysis/reference/."""
