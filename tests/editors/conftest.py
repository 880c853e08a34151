import sys
from pathlib import Path

# The LSP harness (temporary CODEMEM_HOME, fixture copies) lives in tests/lsp.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lsp"))
