-- symlab.qc — building and running parametrized quantum circuits from Lua.
--
--   local qc  = require "symlab.qc"        (the lead makes it reachable as sl.qc)
--   local net = qc.model(qc.hea(4, 3, { observable = "tfim",
--                                      noise = qc.noise("amplitude_damping", 0.01) }))
--   print(qc.cost(net))
--   qc.minimize(net, { steps = 300, lr = 0.05, hooks = { sl.hook.symh { every = 60 } } })
--
-- Everything here builds option tables for the "qcircuit" module of the
-- qcircuit plugin (`symlab describe qcircuit`); the circuit text format and
-- the channels are in docs/quantum.md.  Pure Lua: no C behind it.
local sl = require "symlab"

local M = {}

local function merge(into, from)
  for k, v in pairs(from or {}) do
    if k == "noise" and type(v) == "table" then
      merge(into, v)
    else
      into[k] = v
    end
  end
  return into
end

--- Noise model: qc.noise("depolarizing", 0.01, "gate"|"layer") -> options.
function M.noise(name, strength, at)
  return { noise = name or "none", strength = strength or 0.0, noise_at = at or "gate" }
end

--- Hardware-efficient ansatz (RY, RZ on every qubit, CNOT ladder) per layer.
function M.hea(n, layers, opts)
  return merge({ n_qubits = n, ansatz = "hea", layers = layers or 3 }, opts)
end

--- QAOA layers for a Z-type cost (default MaxCut on the ring).
function M.qaoa(n, layers, opts)
  return merge({ n_qubits = n, ansatz = "qaoa", layers = layers or 1, observable = "maxcut" },
               opts)
end

--- A circuit from text or from a list of statements { "ry 0", "cnot 0 1", ... }.
function M.custom(n, circuit, opts)
  if type(circuit) == "table" then circuit = table.concat(circuit, "\n") end
  return merge({ n_qubits = n, ansatz = "custom", circuit = circuit }, opts)
end

--- "0.5 ZZII + 1 XIII" from { {0.5, "ZZII"}, {1, "XIII"} } (leftmost letter = qubit 0).
function M.pauli_sum(terms)
  local parts = {}
  for i, t in ipairs(terms) do
    local c, s = t[1], t[2]
    local sign = c < 0 and "-" or "+"
    local text = string.format("%.17g %s", math.abs(c), s)
    parts[#parts + 1] = (i == 1 and (c < 0 and "-" or "") or (sign .. " ")) .. text
  end
  return table.concat(parts, " ")
end

local function string_with(n, letters)
  local t = {}
  for q = 0, n - 1 do t[q + 1] = letters[q] or "I" end
  return table.concat(t)
end

--- The TFIM -J sum Z_i Z_{i+1} - h sum X_i as a Pauli-sum text (same as the
--- plugin's "tfim" builder; handy to edit terms by hand).
function M.tfim(n, j, h, periodic)
  j, h = j or 1.0, h or 1.0
  local terms = {}
  local pairs_n = (periodic and n > 2) and n or n - 1
  for i = 0, pairs_n - 1 do
    terms[#terms + 1] = { -j, string_with(n, { [i] = "Z", [(i + 1) % n] = "Z" }) }
  end
  for i = 0, n - 1 do terms[#terms + 1] = { -h, string_with(n, { [i] = "X" }) } end
  return M.pauli_sum(terms)
end

--- A one-module f64 model: qc.model(options, [seed]).
function M.model(options, seed)
  return sl.nn.sequential({ sl.nn.qcircuit(options) }, { dtype = "f64", seed = seed or sl.seed })
end

local probe_input
--- The cost Tr(O rho(theta)) of a qcircuit model.
function M.cost(net)
  probe_input = probe_input or sl.tensor.zeros({ 1, 1 }, "f64")
  return net:forward(probe_input):get(1, 1)
end

local one_row
--- A one-row dataset (x and y ignored by qcircuit and the "value" loss):
--- one epoch of sl.train is then one optimizer step.
function M.dataset()
  one_row = one_row or sl.data.from(sl.tensor.zeros({ 1, 1 }), sl.tensor.zeros({ 1, 1 }))
  return one_row
end

--- Minimises the cost: opts.steps (300), opts.lr (0.05), opts.optimizer
--- ("adam"), opts.hooks, opts.seed.  Returns the final cost and the history.
function M.minimize(net, opts)
  opts = opts or {}
  local opt = sl.optim[opts.optimizer or "adam"](net, { lr = opts.lr or 0.05 })
  local hist = sl.train(net, opt, M.dataset(), {
    epochs = opts.steps or 300, batch = 1, loss = "value", progress = "never",
    seed = opts.seed, hooks = opts.hooks, shuffle = false,
  })
  return M.cost(net), hist
end

return M
