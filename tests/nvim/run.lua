-- Headless Neovim 0.11 end-to-end check of `codemem lsp`, run by tests/lsp/test_nvim.py:
--   CODEMEM_BIN=... CODEMEM_TEST_WORKSPACE=... nvim --headless -u NONE -c "luafile tests/nvim/run.lua"
-- Starts the server with vim.lsp.start on a buffer of the workspace, waits until indexing is
-- done (codemem/status "ready", or the end of $/progress), then runs workspace/symbol and
-- codemem/search and writes one line per result to stdout:
--   CODEMEM_READY <status json> | CODEMEM_SYMBOLS <json> | CODEMEM_SEARCH <json> | CODEMEM_DONE
-- Any failure writes CODEMEM_ERROR <message> and exits with status 1.

local harness = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "harness.lua")
local out, fail = harness.out, harness.fail

local function main()
  local bin = assert(os.getenv("CODEMEM_BIN"), "CODEMEM_BIN is not set")
  local ws = assert(os.getenv("CODEMEM_TEST_WORKSPACE"), "CODEMEM_TEST_WORKSPACE is not set")
  local timeout = tonumber(os.getenv("CODEMEM_TEST_TIMEOUT_MS") or "") or 180000

  vim.cmd.edit(vim.fn.fnameescape(ws .. "/src/ratelimit.rs"))
  local buf = vim.api.nvim_get_current_buf()

  local status = nil
  local progress_ended = false
  local id = vim.lsp.start({
    name = "codemem",
    cmd = { bin, "lsp" },
    root_dir = ws,
    workspace_folders = { { uri = vim.uri_from_fname(ws), name = vim.fs.basename(ws) } },
    init_options = { mcp = { enabled = false }, lexicalOnly = true },
    handlers = {
      ["codemem/status"] = function(_, result)
        status = result
      end,
      ["$/progress"] = function(err, result, ctx, config)
        if result and result.value and result.value.kind == "end" then
          progress_ended = true
        end
        return vim.lsp.handlers["$/progress"](err, result, ctx, config)
      end,
    },
  }, { bufnr = buf })
  if not id then
    return fail("vim.lsp.start returned nil")
  end
  local client = vim.lsp.get_client_by_id(id)

  local function ready()
    if status == nil or status.state ~= "ready" then
      return false
    end
    for _, r in ipairs(status.roots or {}) do
      if r.indexing or (r.files or 0) == 0 then
        return false
      end
    end
    return #(status.roots or {}) > 0
  end
  local ok = vim.wait(timeout, function()
    return ready() or client:is_stopped()
  end, 50)
  if client:is_stopped() then
    return fail("the server stopped during indexing")
  end
  if not ok then
    return fail("not ready within " .. timeout .. " ms; last status: " .. vim.inspect(status) ..
      "; progress ended: " .. tostring(progress_ended))
  end
  out("CODEMEM_READY", { status = status, progress_ended = progress_ended })

  local resp, err = client:request_sync("workspace/symbol", { query = "TokenBucket" }, 30000, buf)
  if not resp then
    return fail("workspace/symbol: " .. tostring(err))
  end
  if resp.err then
    return fail("workspace/symbol error: " .. vim.inspect(resp.err))
  end
  out("CODEMEM_SYMBOLS", resp.result or vim.NIL)

  resp, err = client:request_sync("codemem/search", { query = "calculate_invoice_total", k = 5 }, 30000, buf)
  if not resp then
    return fail("codemem/search: " .. tostring(err))
  end
  if resp.err then
    return fail("codemem/search error: " .. vim.inspect(resp.err))
  end
  out("CODEMEM_SEARCH", resp.result or vim.NIL)

  harness.finish(client)
end

harness.run(main)
