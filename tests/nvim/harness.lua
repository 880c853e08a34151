-- Shared by the headless Neovim test scripts (tests/nvim/run.lua, tests/editors/nvim_plugin.lua):
-- results go to stdout as `CODEMEM_<TAG> <json>` lines that the Python side parses
-- (lsp_harness.run_nvim_script); a failure is `CODEMEM_ERROR <message>` and exit status 1.
local M = {}

function M.out(tag, value)
  io.stdout:write(tag .. " " .. (type(value) == "string" and value or vim.json.encode(value)) .. "\n")
  io.stdout:flush()
end

function M.fail(msg)
  M.out("CODEMEM_ERROR", tostring(msg))
  vim.cmd("cquit 1")
end

-- Stops the client (waiting up to 10 s), reports CODEMEM_DONE and quits Neovim.
function M.finish(client)
  client:stop()
  vim.wait(10000, function()
    return client:is_stopped()
  end, 50)
  M.out("CODEMEM_DONE", { stopped = client:is_stopped() })
  vim.cmd("qall!")
end

-- Runs `main`; an error (with its traceback) becomes CODEMEM_ERROR.
function M.run(main)
  local ok, err = xpcall(main, debug.traceback)
  if not ok then
    M.fail(err)
  end
end

return M
