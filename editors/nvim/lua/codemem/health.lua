-- :checkhealth codemem: Neovim version, the server binary and its prerequisites
-- (`codemem doctor`), setup() and the running clients.
local M = {}

function M.check()
  local h = vim.health
  local codemem = require("codemem")
  h.start("codemem")

  local v = vim.version()
  if vim.fn.has("nvim-0.11") == 1 then
    h.ok(string.format("Neovim %d.%d.%d (vim.lsp.config / vim.lsp.enable)", v.major, v.minor, v.patch))
  elseif vim.fn.has("nvim-0.10") == 1 then
    h.ok(string.format("Neovim %d.%d.%d (vim.lsp.start fallback)", v.major, v.minor, v.patch))
  else
    h.error("Neovim 0.10 or newer is required", { "upgrade Neovim" })
  end

  if codemem.state.setup_called then
    h.ok("setup() called")
  else
    h.warn("setup() was not called", { 'add require("codemem").setup{} to your config' })
  end

  local bin = codemem.cmd()[1]
  local exe = vim.fn.exepath(bin)
  if exe == "" then
    h.error(bin .. " not found", {
      "in a codemem checkout run scripts/quickstart (installs codemem into ~/.cargo/bin)",
      'or set require("codemem").setup{ cmd = { "/path/to/codemem", "lsp" } }',
    })
    return
  end
  local version = vim.system({ exe, "--version" }, { text = true }):wait(10000)
  if version.code == 0 then
    h.ok(vim.trim(version.stdout) .. " at " .. exe)
  else
    h.error(exe .. " --version failed: " .. vim.trim(version.stderr or ""))
  end

  local doctor = vim.system({ exe, "doctor" }, { text = true }):wait(60000)
  local last
  for line in (doctor.stdout or ""):gmatch("[^\n]+") do
    local ok_msg = line:match("^ok%s+(.*)")
    local fail_msg = line:match("^FAIL%s+(.*)")
    local hint = line:match("^%s+hint:%s*(.*)")
    if ok_msg then
      h.ok(ok_msg)
      last = nil
    elseif fail_msg then
      last = fail_msg
      h.error(fail_msg)
    elseif hint and last then
      h.info("fix: " .. hint)
    end
  end
  if doctor.code ~= 0 then
    h.error("codemem doctor failed (exit " .. tostring(doctor.code) .. ")", { "run `codemem doctor` in a terminal" })
  end

  local clients = vim.lsp.get_clients({ name = "codemem" })
  if #clients == 0 then
    h.info("no codemem server running yet (it starts when you open a file in a project)")
  end
  for _, c in ipairs(clients) do
    -- Ask now; the last codemem/status notification may be older than the index.
    local resp = c:request_sync("workspace/executeCommand", { command = "codemem.status", arguments = {} }, 10000)
    local s = (resp and not resp.err and resp.result) or codemem.state.status[c.id]
    if not s then
      h.info("client " .. c.id .. ": no status yet")
    elseif s.state == "error" then
      h.error("client " .. c.id .. ": " .. tostring(s.error))
    else
      for _, line in ipairs(codemem.status_lines(s)) do
        if line:match("^UNHEALTHY") then
          h.warn(line)
        else
          h.ok(line)
        end
      end
    end
  end

  for _, p in ipairs({ "telescope", "fzf-lua" }) do
    if pcall(require, p) then
      h.ok(p .. " found: results open in it")
    end
  end
end

return M
