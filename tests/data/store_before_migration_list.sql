-- A SQLite store made by workbench before the ordered migration list (git main at 184e4d1):
-- only the governance (1, 10) and observability (40-43) migrations ran, because only those
-- modules had been imported. The team row shows that data survives the upgrade.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	applied_at FLOAT NOT NULL, 
	PRIMARY KEY (version)
);
INSERT INTO schema_version VALUES(1,1796536376.7697250843);
INSERT INTO schema_version VALUES(10,1796536376.7707850932);
INSERT INTO schema_version VALUES(40,1796536376.7713749408);
INSERT INTO schema_version VALUES(41,1796536376.772387743);
INSERT INTO schema_version VALUES(42,1796536376.7785248755);
INSERT INTO schema_version VALUES(43,1796536376.7789020538);
CREATE TABLE teams (
	name VARCHAR(128) NOT NULL, 
	models JSON, 
	budget_usd FLOAT, 
	spent_usd FLOAT NOT NULL, 
	reserved_usd FLOAT NOT NULL, 
	rpm INTEGER, 
	tpm INTEGER, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (name)
);
INSERT INTO teams VALUES('research',NULL,NULL,1.5,0.0,NULL,NULL,1700000000.0);
CREATE TABLE keys (
	id VARCHAR(32) NOT NULL, 
	key_hash VARCHAR(64) NOT NULL, 
	hint VARCHAR(16) NOT NULL, 
	name VARCHAR(128), 
	team VARCHAR(128) NOT NULL, 
	models JSON, 
	budget_usd FLOAT, 
	spent_usd FLOAT NOT NULL, 
	reserved_usd FLOAT NOT NULL, 
	rpm INTEGER, 
	tpm INTEGER, 
	guardrail_mode VARCHAR(16), 
	cache INTEGER NOT NULL, 
	expires_at FLOAT, 
	revoked_at FLOAT, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (key_hash)
);
CREATE TABLE rate_windows (
	subject VARCHAR(160) NOT NULL, 
	window BIGINT NOT NULL, 
	requests INTEGER NOT NULL, 
	tokens INTEGER NOT NULL, 
	PRIMARY KEY (subject, window)
);
CREATE TABLE ledger (
	id INTEGER NOT NULL, 
	ts FLOAT NOT NULL, 
	key_id VARCHAR(32), 
	team VARCHAR(128), 
	model VARCHAR(128), 
	provider VARCHAR(64), 
	endpoint VARCHAR(32) NOT NULL, 
	tokens_in INTEGER NOT NULL, 
	tokens_out INTEGER NOT NULL, 
	cost_usd FLOAT NOT NULL, 
	latency_ms FLOAT NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	error_code VARCHAR(64), 
	redactions INTEGER NOT NULL, 
	trace_id VARCHAR(32), 
	anomaly VARCHAR(128), 
	PRIMARY KEY (id)
);
CREATE TABLE audit (
	id INTEGER NOT NULL, 
	ts FLOAT NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	action VARCHAR(64) NOT NULL, 
	target VARCHAR(160) NOT NULL, 
	details JSON NOT NULL, 
	prev_hash VARCHAR(64) NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE response_cache (
	"key" VARCHAR(64) NOT NULL, 
	model VARCHAR(128) NOT NULL, 
	response JSON NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE reservations (
	id VARCHAR(32) NOT NULL, 
	key_id VARCHAR(32), 
	team VARCHAR(128), 
	amount_usd FLOAT NOT NULL, 
	created_at FLOAT NOT NULL, 
	owner VARCHAR(32), 
	PRIMARY KEY (id)
);
CREATE TABLE processes (
	id VARCHAR(32) NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	host_key VARCHAR(64) NOT NULL, 
	pid INTEGER NOT NULL, 
	pid_start BIGINT, 
	started_at FLOAT NOT NULL, 
	heartbeat_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE spans (
	trace_id VARCHAR(32) NOT NULL, 
	span_id VARCHAR(16) NOT NULL, 
	parent_id VARCHAR(16), 
	name VARCHAR(256) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	start_ns BIGINT NOT NULL, 
	end_ns BIGINT NOT NULL, 
	duration_ms FLOAT NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	status_message TEXT, 
	model VARCHAR(128), 
	tokens_in INTEGER, 
	tokens_out INTEGER, 
	attributes JSON NOT NULL, 
	events JSON NOT NULL, 
	service VARCHAR(128), 
	PRIMARY KEY (trace_id, span_id)
);
CREATE TABLE feedback (
	id VARCHAR(32) NOT NULL, 
	dedupe_key VARCHAR(64) NOT NULL, 
	trace_id VARCHAR(32) NOT NULL, 
	span_id VARCHAR(16), 
	kind VARCHAR(16) NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	data_type VARCHAR(16) NOT NULL, 
	value_num FLOAT, 
	value_text TEXT, 
	comment TEXT, 
	source_kind VARCHAR(16) NOT NULL, 
	source_id VARCHAR(128), 
	diff TEXT, 
	occurrences INTEGER NOT NULL, 
	linked INTEGER NOT NULL, 
	metadata JSON NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (dedupe_key)
);
CREATE TABLE feedback_requests (
	idempotency_id VARCHAR(128) NOT NULL, 
	feedback_id VARCHAR(32) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (idempotency_id)
);
CREATE TABLE probe_runs (
	id VARCHAR(32) NOT NULL, 
	started_at FLOAT NOT NULL, 
	finished_at FLOAT, 
	target VARCHAR(256) NOT NULL, 
	probes INTEGER NOT NULL, 
	failed INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE probe_results (
	id INTEGER NOT NULL, 
	run_id VARCHAR(32) NOT NULL, 
	probe VARCHAR(128) NOT NULL, 
	ts FLOAT NOT NULL, 
	target VARCHAR(256) NOT NULL, 
	ok INTEGER NOT NULL, 
	expectation VARCHAR(16) NOT NULL, 
	score FLOAT, 
	detail TEXT NOT NULL, 
	output TEXT, 
	output_hash VARCHAR(16), 
	model VARCHAR(128), 
	model_version VARCHAR(128), 
	prompt_hash VARCHAR(16) NOT NULL, 
	latency_ms FLOAT, 
	trace_id VARCHAR(32), 
	error TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_probe_results_run_probe UNIQUE (run_id, probe)
);
CREATE TABLE trace_claims (
	trace_id VARCHAR(32) NOT NULL, 
	owner VARCHAR(64) NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (trace_id)
);
CREATE INDEX ix_ledger_trace ON ledger (trace_id);
CREATE INDEX ix_ledger_ts ON ledger (ts);
CREATE INDEX ix_spans_start ON spans (start_ns);
CREATE INDEX ix_feedback_created ON feedback (created_at);
CREATE INDEX ix_feedback_trace ON feedback (trace_id);
CREATE INDEX ix_probe_results_probe_ts ON probe_results (probe, ts);
COMMIT;
