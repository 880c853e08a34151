-- Headless Neovim 0.11 check of the codemem plugin (editors/nvim) against the real server, run by
-- tests/editors/test_nvim_plugin.py:
--   CODEMEM_BIN=... CODEMEM_TEST_WORKSPACE=... CODEMEM_PLUGIN_DIR=... \
--     nvim --headless -u NONE -i NONE -c "luafile tests/editors/nvim_plugin.lua"
-- Loads the plugin as a user would (runtimepath + plugin/codemem.lua + setup{}), opens a file,
-- waits until indexed, then drives the user commands and :checkhealth. Writes one line per step:
--   CODEMEM_<STEP> <json>   and CODEMEM_ERROR <message> (exit 1) on any failure.

local harness = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "../nvim/harness.lua")
local out, fail = harness.out, harness.fail

local timeout = tonumber(os.getenv("CODEMEM_TEST_TIMEOUT_MS") or "") or 180000

local function wait(what, cond, ms, detail)
  if not vim.wait(ms or timeout, cond, 50) then
    error("timed out waiting for " .. what .. (detail and ("; " .. vim.inspect(detail())) or ""), 0)
  end
end

local function main()
  local bin = assert(os.getenv("CODEMEM_BIN"), "CODEMEM_BIN is not set")
  local ws = assert(os.getenv("CODEMEM_TEST_WORKSPACE"), "CODEMEM_TEST_WORKSPACE is not set")
  local plugin_dir = assert(os.getenv("CODEMEM_PLUGIN_DIR"), "CODEMEM_PLUGIN_DIR is not set")

  -- What the plugin shows: notifications, echoed progress, picker calls.
  local notes, echoes, selects, raw_progress = {}, {}, {}, {}
  vim.notify = function(msg, level)
    notes[#notes + 1] = { msg = msg, level = level }
  end
  local echo = vim.api.nvim_echo
  vim.api.nvim_echo = function(chunks, history, opts)
    local text = table.concat(vim.tbl_map(function(c) return c[1] end, chunks))
    if text:match("^codemem") then
      echoes[#echoes + 1] = text
    end
    return echo(chunks, history, opts)
  end
  vim.ui.select = function(items, opts, on_choice)
    selects[#selects + 1] = { n = #items, prompt = opts.prompt, first = opts.format_item(items[1]) }
    on_choice(nil)
  end
  vim.api.nvim_create_autocmd("LspProgress", {
    callback = function(ev)
      raw_progress[#raw_progress + 1] = ev.data.params.value.kind
    end,
  })

  vim.opt.runtimepath:prepend(plugin_dir)
  vim.cmd("filetype on")
  vim.cmd.runtime("plugin/codemem.lua")
  local cmds = {}
  for name in pairs(vim.api.nvim_get_commands({})) do
    if name:match("^Codemem") then
      cmds[#cmds + 1] = name
    end
  end
  table.sort(cmds)
  out("CODEMEM_COMMANDS", cmds)

  local codemem = require("codemem")
  codemem.setup({ cmd = { bin, "lsp" }, lexical_only = true, mcp = { enabled = false } })

  vim.cmd.edit(vim.fn.fnameescape(ws .. "/src/ratelimit.rs"))
  local buf = vim.api.nvim_get_current_buf()
  wait("the codemem client to attach", function()
    return #vim.lsp.get_clients({ name = "codemem", bufnr = buf }) > 0
  end, 30000)
  local client = vim.lsp.get_clients({ name = "codemem", bufnr = buf })[1]
  local statuslines = {}
  wait("codemem/status ready", function()
    local s = codemem.statusline()
    if statuslines[#statuslines] ~= s then
      statuslines[#statuslines + 1] = s
    end
    local st = codemem.state.status[client.id]
    if not st or st.state ~= "ready" or #(st.roots or {}) == 0 then
      return false
    end
    for _, r in ipairs(st.roots) do
      if r.indexing or (r.files or 0) == 0 then
        return false
      end
    end
    return codemem.state.progress[client.id] == nil
  end, nil, function()
    return { root_dir = client.config.root_dir, state = codemem.state, progress = raw_progress, notes = notes }
  end)
  out("CODEMEM_READY", {
    root_dir = client.config.root_dir,
    init_options = client.config.init_options,
    status = codemem.state.status[client.id],
    raw_progress = raw_progress,
    echoes = echoes,
    statuslines = statuslines,
    statusline = codemem.statusline(),
  })

  vim.cmd("CodememSearch calculate_invoice_total")
  wait(":CodememSearch results in the quickfix list", function()
    return vim.fn.getqflist({ title = 1 }).title == "codemem: calculate_invoice_total" and #selects > 0
  end, 30000)
  local qf = vim.tbl_map(function(it)
    return { file = vim.api.nvim_buf_get_name(it.bufnr), lnum = it.lnum, text = it.text }
  end, vim.fn.getqflist())
  out("CODEMEM_SEARCH", { qf = qf, selects = selects })

  -- A note on the definition's lines, then code similar to them.
  vim.cmd.edit(vim.fn.fnameescape(qf[1].file))
  local n0 = #notes
  vim.cmd(string.format("%d,%dCodememRemember rounding is half-even on purpose", qf[1].lnum, qf[1].lnum + 2))
  wait("note saved", function()
    for i = n0 + 1, #notes do
      if notes[i].msg:match("note saved") then
        return true
      end
    end
  end, 30000)
  vim.cmd(string.format("%d,%dCodememSimilar", qf[1].lnum, qf[1].lnum + 2))
  wait(":CodememSimilar results", function()
    return vim.fn.getqflist({ title = 1 }).title == "codemem: similar code"
  end, 30000)
  out("CODEMEM_SIMILAR", { n = #vim.fn.getqflist() })

  n0 = #notes
  vim.cmd("CodememStatus")
  wait(":CodememStatus", function()
    return #notes > n0 and notes[#notes].msg:match("state:") ~= nil
  end, 30000)
  out("CODEMEM_STATUS", { msg = notes[#notes].msg })

  n0 = #notes
  vim.cmd("CodememReindex")
  wait(":CodememReindex", function()
    return #notes > n0 and notes[#notes].msg:match("reindexed:") ~= nil
  end, 120000)
  out("CODEMEM_REINDEX", { msg = notes[#notes].msg })
  wait("codemem/status ready after the reindex", function()
    local st = codemem.state.status[client.id]
    return st and st.state == "ready"
  end, 60000)

  vim.cmd("checkhealth codemem")
  out("CODEMEM_HEALTH", { text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n") })

  harness.finish(client)
end

harness.run(main)
