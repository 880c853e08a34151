//! codemem-lsp: the LSP adapter (tower-lsp-server). Translates LSP to `codemem_service` calls and back; knows no storage.
