-- 0001_init: the full schema of DESIGN.md.
-- Applied by `sfbridge migrate` inside one transaction; recorded in schema_migrations.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- The role the workers connect as (when deployed with separate roles): DML only, no DDL,
-- no UPDATE/DELETE on audit_log. Created NOLOGIN here; an operator grants LOGIN and a password.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sfbridge_worker') THEN
        CREATE ROLE sfbridge_worker NOLOGIN;
    END IF;
END
$$;

CREATE TABLE organizations (
    org_id              text PRIMARY KEY CHECK (org_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    name                text,
    salesforce_enabled  boolean NOT NULL DEFAULT false,
    enabled_by          text,
    enabled_at          timestamptz,
    external_id_field   text NOT NULL DEFAULT 'Platform_Id__c',
    api_budget_pct      integer CHECK (api_budget_pct BETWEEN 1 AND 100),
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE connections (
    connection_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id               text NOT NULL REFERENCES organizations(org_id),
    user_id              text NOT NULL,
    instance_url         text,
    sf_org_id            text CHECK (sf_org_id IS NULL OR length(sf_org_id) IN (15, 18)),
    sf_user_id           text CHECK (sf_user_id IS NULL OR length(sf_user_id) IN (15, 18)),
    sf_username          text,
    status               text NOT NULL DEFAULT 'connected'
                         CHECK (status IN ('connected', 'expired', 'disabled')),
    access_token_enc     text,
    refresh_token_enc    text,
    token_key_id         text,
    token_version        bigint NOT NULL DEFAULT 0,
    issued_at            timestamptz,
    connected_at         timestamptz,
    last_refresh_at      timestamptz,
    last_error           text,
    status_reason        text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, user_id)
);
CREATE INDEX connections_sf_org ON connections (sf_org_id);

CREATE TABLE oauth_states (
    state          text PRIMARY KEY,
    org_id         text NOT NULL REFERENCES organizations(org_id),
    user_id        text NOT NULL,
    code_verifier  text NOT NULL,
    redirect_uri   text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

CREATE TABLE object_mappings (
    org_id           text NOT NULL REFERENCES organizations(org_id),
    sf_object        text NOT NULL CHECK (sf_object ~ '^[A-Za-z][A-Za-z0-9_]{0,79}$'),
    platform_object  text NOT NULL CHECK (platform_object IN ('Company', 'Deal', 'Contact', 'Activity')),
    enabled          boolean NOT NULL DEFAULT true,
    soql_filter      text,
    updated_by       text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, sf_object)
);

CREATE TABLE field_mappings (
    org_id          text NOT NULL,
    sf_object       text NOT NULL,
    sf_field        text NOT NULL CHECK (sf_field ~ '^[A-Za-z][A-Za-z0-9_]{0,79}(\.[A-Za-z][A-Za-z0-9_]{0,79}){0,4}$'),
    platform_field  text NOT NULL CHECK (platform_field ~ '^[a-z][a-z0-9_]{0,62}$'),
    direction       text NOT NULL DEFAULT 'import' CHECK (direction IN ('import', 'export', 'both')),
    transform       text,
    is_match_key    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (org_id, sf_object, sf_field, platform_field),
    FOREIGN KEY (org_id, sf_object) REFERENCES object_mappings(org_id, sf_object) ON DELETE CASCADE
);

-- Mapped platform rows. Core columns per object; every other mapped field in attributes.
CREATE TABLE companies (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           text NOT NULL REFERENCES organizations(org_id),
    connection_id    uuid REFERENCES connections(connection_id),
    salesforce_id    char(18),
    name             text,
    website          text,
    industry         text,
    type             text,
    phone            text,
    billing_city     text,
    billing_country  text,
    annual_revenue   numeric(18,2),
    employees        integer,
    owner_id         char(18),
    attributes       jsonb NOT NULL DEFAULT '{}',
    sf_modstamp      timestamptz,
    deleted_at       timestamptz,
    synced_at        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, salesforce_id)
);

CREATE TABLE deals (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                text NOT NULL REFERENCES organizations(org_id),
    connection_id         uuid REFERENCES connections(connection_id),
    salesforce_id         char(18),
    company_id            uuid REFERENCES companies(id),
    company_sf_id         char(18),
    name                  text,
    stage                 text,
    amount                numeric(18,2),
    close_date            date,
    probability           numeric(5,2),
    type                  text,
    owner_id              char(18),
    attributes            jsonb NOT NULL DEFAULT '{}',
    sf_modstamp           timestamptz,
    deleted_at            timestamptz,
    synced_at             timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, salesforce_id)
);
CREATE INDEX deals_company_sf ON deals (org_id, company_sf_id) WHERE company_id IS NULL;
CREATE INDEX deals_company ON deals (company_id);

CREATE TABLE contacts (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                text NOT NULL REFERENCES organizations(org_id),
    connection_id         uuid REFERENCES connections(connection_id),
    salesforce_id         char(18),
    company_id            uuid REFERENCES companies(id),
    company_sf_id         char(18),
    first_name            text,
    last_name             text,
    email                 text,
    phone                 text,
    title                 text,
    owner_id              char(18),
    attributes            jsonb NOT NULL DEFAULT '{}',
    sf_modstamp           timestamptz,
    deleted_at            timestamptz,
    synced_at             timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, salesforce_id)
);
CREATE INDEX contacts_company_sf ON contacts (org_id, company_sf_id) WHERE company_id IS NULL;
CREATE INDEX contacts_company ON contacts (company_id);
CREATE INDEX contacts_email ON contacts (org_id, lower(email));

CREATE TABLE activities (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                text NOT NULL REFERENCES organizations(org_id),
    connection_id         uuid REFERENCES connections(connection_id),
    salesforce_id         char(18),
    sf_object             text NOT NULL DEFAULT 'Interaction',
    company_id            uuid REFERENCES companies(id),
    company_sf_id         char(18),
    deal_id               uuid REFERENCES deals(id),
    deal_sf_id            char(18),
    contact_sf_ids        text[] NOT NULL DEFAULT '{}',
    contact_ids           uuid[] NOT NULL DEFAULT '{}',
    subject               text,
    activity_type         text,
    start_time            timestamptz,
    end_time              timestamptz,
    description           text,
    owner_id              char(18),
    attributes            jsonb NOT NULL DEFAULT '{}',
    sf_modstamp           timestamptz,
    deleted_at            timestamptz,
    synced_at             timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, salesforce_id)
);
CREATE INDEX activities_company_sf ON activities (org_id, company_sf_id) WHERE company_id IS NULL;
CREATE INDEX activities_deal_sf ON activities (org_id, deal_sf_id) WHERE deal_id IS NULL;

CREATE TABLE sync_state (
    connection_id   uuid NOT NULL REFERENCES connections(connection_id),
    sf_object       text NOT NULL,
    watermark       timestamptz,
    last_id         char(18),
    window_seconds  bigint,
    last_full_at    timestamptz,
    last_formulas_at timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, sf_object)
);

CREATE TABLE sync_runs (
    request_id     uuid PRIMARY KEY,
    org_id         text NOT NULL,
    connection_id  uuid NOT NULL,
    mode           text NOT NULL,
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'succeeded', 'failed', 'deferred')),
    current_object text,
    objects        jsonb NOT NULL DEFAULT '{}',
    fetched        bigint NOT NULL DEFAULT 0,
    total          bigint,
    api_calls      integer NOT NULL DEFAULT 0,
    error_code     text,
    error_message  text,
    retry_at       timestamptz,
    requested_by   text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX sync_runs_conn ON sync_runs (connection_id, started_at DESC);

-- Inbox: one row per input message handled; `result` is the output event re-emitted on redelivery.
CREATE TABLE processed_messages (
    message_id     uuid PRIMARY KEY,
    topic          text NOT NULL,
    org_id         text,
    connection_id  uuid,
    result_topic   text,
    result         jsonb,
    processed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE write_intents (
    request_id     uuid NOT NULL,
    ref            text NOT NULL,
    org_id         text NOT NULL,
    connection_id  uuid NOT NULL,
    platform_object text NOT NULL,
    sf_object      text NOT NULL,
    action         text NOT NULL,
    platform_id    uuid NOT NULL,
    external_id    text,
    payload        jsonb NOT NULL,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'sent', 'succeeded', 'failed', 'refused')),
    salesforce_id  char(18),
    outcome        text,
    error_code     text,
    error_message  text,
    attempts       integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, ref)
);

CREATE TABLE schedules (
    connection_id   uuid NOT NULL REFERENCES connections(connection_id),
    kind            text NOT NULL DEFAULT 'incremental'
                    CHECK (kind IN ('incremental', 'full', 'formulas', 'reconcile')),
    interval_seconds integer NOT NULL DEFAULT 900 CHECK (interval_seconds >= 10),
    enabled         boolean NOT NULL DEFAULT true,
    next_run_at     timestamptz NOT NULL DEFAULT now(),
    last_run_at     timestamptz,
    last_request_id uuid,
    PRIMARY KEY (connection_id, kind)
);

-- Append-only audit trail, hash-chained per org.
CREATE TABLE audit_log (
    audit_id       bigserial PRIMARY KEY,
    org_id         text NOT NULL,
    connection_id  uuid,
    request_id     uuid,
    actor          text NOT NULL,
    source         text,
    action         text NOT NULL,
    sf_object      text,
    platform_object text,
    ref            text,
    salesforce_id  text,
    fields         jsonb NOT NULL DEFAULT '{}',
    outcome        text NOT NULL,
    sf_error_code  text,
    sf_error_message text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    prev_hash      text NOT NULL,
    hash           text NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, audit_id);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

CREATE TABLE api_usage (
    sf_org_id   text PRIMARY KEY,
    used        bigint NOT NULL,
    api_limit   bigint NOT NULL,
    as_of       timestamptz NOT NULL DEFAULT now()
);

-- Least privilege for the worker role.
GRANT SELECT ON organizations, object_mappings, field_mappings TO sfbridge_worker;
GRANT SELECT, INSERT, UPDATE ON connections, oauth_states, companies, deals, contacts, activities,
    sync_state, sync_runs, processed_messages, write_intents, schedules, api_usage TO sfbridge_worker;
GRANT SELECT, INSERT ON audit_log TO sfbridge_worker;
GRANT USAGE ON SEQUENCE audit_log_audit_id_seq TO sfbridge_worker;
