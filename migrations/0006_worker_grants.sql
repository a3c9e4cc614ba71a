-- 0006_worker_grants: what the sfbridge_worker role (least privilege, see 0001) was missing.
-- Every worker checks the schema version at start-up (pg_check_schema reads
-- schema_migrations); without this a worker connected as sfbridge_worker refuses to start
-- with "permission denied for table schema_migrations". Read-only: the worker role never
-- migrates. Proven by tests/it_security.c (workers run as sfbridge_worker; DDL, audit_log
-- UPDATE/DELETE/TRUNCATE and writes to admin-owned tables are refused).
GRANT SELECT ON schema_migrations TO sfbridge_worker;
