-- GET /stats/prometheus for the stand-in proxy: HAProxy's own counters under Envoy's metric names and labels, so
-- a test reads the same series from the stand-in as from Envoy. The frontends and backends in haproxy.cfg carry
-- Envoy's listener and cluster names.

local listeners = {
  { frontend = "virtualOutbound", port = os.getenv("MESH_PROXY_OUTBOUND_PORT") },
  { frontend = "virtualInbound", port = os.getenv("MESH_PROXY_INBOUND_PORT") },
}
local clusters = { "PassthroughCluster", "InboundPassthroughCluster" }

local function number(stats, field)
  return tonumber(stats[field]) or 0
end

local function render()
  local lines = {}
  local function family(name, kind, samples)
    lines[#lines + 1] = "# TYPE " .. name .. " " .. kind
    for _, sample in ipairs(samples) do
      lines[#lines + 1] = name .. "{" .. sample[1] .. "} " .. string.format("%d", sample[2])
    end
  end

  local total, active = {}, {}
  for _, listener in ipairs(listeners) do
    local stats = core.frontends[listener.frontend]:get_stats()
    local label = 'envoy_listener_address="0.0.0.0_' .. listener.port .. '"'
    total[#total + 1] = { label, number(stats, "stot") + number(stats, "dcon") }
    active[#active + 1] = { label, number(stats, "scur") }
  end
  family("envoy_listener_downstream_cx_total", "counter", total)
  family("envoy_listener_downstream_cx_active", "gauge", active)

  local upstream, failed = {}, {}
  for _, cluster in ipairs(clusters) do
    local stats = core.backends[cluster]:get_stats()
    local label = 'envoy_cluster_name="' .. cluster .. '"'
    upstream[#upstream + 1] = { label, number(stats, "stot") }
    failed[#failed + 1] = { label, number(stats, "econ") }
  end
  family("envoy_cluster_upstream_cx_total", "counter", upstream)
  family("envoy_cluster_upstream_cx_connect_fail", "counter", failed)

  lines[#lines + 1] = "# TYPE envoy_server_live gauge"
  lines[#lines + 1] = "envoy_server_live{} 1"
  return table.concat(lines, "\n") .. "\n"
end

core.register_service("envoy_stats", "http", function(applet)
  local body = render()
  applet:set_status(200)
  applet:add_header("content-type", "text/plain; version=0.0.4")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end)
