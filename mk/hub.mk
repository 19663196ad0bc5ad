# WebSocket hub benchmark: alarm delivery latency p50/p99 and server memory
# per connection for 1000 and 5000 subscribers on loopback (benches/ws.rs, a
# bench of the vigil-bin package: it runs the binary)
# (BENCH_WS_SUBSCRIBERS=200,800 to choose; BENCH_PROFILE=dev skips the release build;
# BENCH_VIGIL_BIN=path runs another build of vigil, for a before/after comparison;
# BENCH_WS_SETTLE_SECS=40 waits that long between the last connect and the burst). Needs a replica set: uses
# MONGODB_URI when set, otherwise starts a throwaway database.
.PHONY: bench-ws
bench-ws: deps venv models
	scripts/with-database.sh --ephemeral -- $(CARGO) bench -p vigil-bin --bench ws $(if $(BENCH_PROFILE),--profile $(BENCH_PROFILE))
