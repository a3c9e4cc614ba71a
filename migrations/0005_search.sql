-- 0005_search: full-text search over the synced companies, deals, contacts and activities.
--
--   sfbridge_search(org, query, lim [, today]) -> ranked rows with their Salesforce links
--   sfbridge_search_parse(org, query [, today]) -> jsonb: how the query was understood
--
-- The query is plain words plus the simple filters a chat layer produces:
--   object words   deals / opportunities / pipeline, companies / accounts, contacts / people,
--                  activities / meetings / calls / interactions
--   amounts        over 5M, above $250k, at least 1.5m, under 500k, between 1M and 3M
--                  (deal amount; a company's annual revenue when companies are asked for)
--   dates          this|next|last week|month|quarter|year, q3 [2027], next 30 days, in 2027,
--                  before|after|since 2027-03-31, between 2027-01-01 and 2027-03-31
--                  (deal close date, activity start; "closing ..." restricts to deals)
--   stages         any stage name present in the org's deals (closed won, negotiation, ...),
--                  open (not closed), closed, won, lost, stage <word>
--   industries     any industry present in the org's companies (healthcare, tech -> Technology)
--   owner          owned by <name|Salesforce user id> (owner_id, or attributes owner_name/owner/owner_email)
-- Every other word is matched with prefix full-text search (English stemming) against the
-- row's own text and its company's name; all words must match, or, when nothing matches
-- them all, any of them (ranked by how many and where). Soft-deleted rows are never returned.
-- Expression GIN indexes (the functions below are IMMUTABLE) keep it fast on large orgs.

CREATE FUNCTION sfbridge_company_tsv(name text, industry text, type text, website text, city text,
                                     country text, attributes jsonb)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(name, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(industry, '') || ' ' || coalesce(type, '')), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(website, '') || ' ' || coalesce(city, '') || ' '
                                 || coalesce(country, '')), 'C')
        || setweight(jsonb_to_tsvector('english'::regconfig, coalesce(attributes, '{}'::jsonb), '["string"]'), 'D')
$$;

CREATE FUNCTION sfbridge_deal_tsv(name text, stage text, type text, attributes jsonb)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(name, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(stage, '') || ' ' || coalesce(type, '')), 'B')
        || setweight(jsonb_to_tsvector('english'::regconfig, coalesce(attributes, '{}'::jsonb), '["string"]'), 'D')
$$;

CREATE FUNCTION sfbridge_contact_tsv(first_name text, last_name text, email text, title text, phone text,
                                     attributes jsonb)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(first_name, '') || ' ' || coalesce(last_name, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(title, '') || ' ' || coalesce(email, '') || ' '
                                 || coalesce(split_part(email, '@', 2), '')), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(phone, '')), 'C')
        || setweight(jsonb_to_tsvector('english'::regconfig, coalesce(attributes, '{}'::jsonb), '["string"]'), 'D')
$$;

CREATE FUNCTION sfbridge_activity_tsv(subject text, activity_type text, description text, attributes jsonb)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(subject, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(activity_type, '')), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'C')
        || setweight(jsonb_to_tsvector('english'::regconfig, coalesce(attributes, '{}'::jsonb), '["string"]'), 'D')
$$;

CREATE INDEX companies_search ON companies USING gin
    (sfbridge_company_tsv(name, industry, type, website, billing_city, billing_country, attributes));
CREATE INDEX deals_search ON deals USING gin (sfbridge_deal_tsv(name, stage, type, attributes));
CREATE INDEX contacts_search ON contacts USING gin
    (sfbridge_contact_tsv(first_name, last_name, email, title, phone, attributes));
CREATE INDEX activities_search ON activities USING gin
    (sfbridge_activity_tsv(subject, activity_type, description, attributes));
CREATE INDEX deals_org_close ON deals (org_id, close_date) WHERE deleted_at IS NULL;
CREATE INDEX deals_org_amount ON deals (org_id, amount) WHERE deleted_at IS NULL;

-- "5", "2,500,000", "1.5" + unit -> numeric
CREATE FUNCTION sfbridge_search_amount(num text, unit text) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT replace(num, ',', '')::numeric * CASE
        WHEN unit IN ('k', 'thousand') THEN 1000
        WHEN unit IN ('m', 'mm', 'mn', 'million', 'millions') THEN 1000000
        WHEN unit IN ('b', 'bn', 'billion', 'billions') THEN 1000000000
        ELSE 1 END
$$;

-- length of the common prefix of two words
CREATE FUNCTION sfbridge_search_common_prefix(a text, b text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n integer := 0;
BEGIN
    WHILE n < least(length(a), length(b)) AND substr(a, n + 1, 1) = substr(b, n + 1, 1) LOOP
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

CREATE FUNCTION sfbridge_search_parse(p_org text, p_query text, p_today date DEFAULT current_date)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    q text;
    step interval;
    num_re constant text := '\$?\s*(\d[\d,]*(?:\.\d+)?)\s*(thousand|millions|million|billions|billion|mm|mn|bn|k|m|b)?\M';
    m text[];
    types text[] := '{}';
    amount_min numeric;
    amount_max numeric;
    date_from date;
    date_to date;
    date_phrase text;
    closing boolean := false;
    stages text[] := '{}';
    open_only boolean := false;
    industries text[] := '{}';
    owner text;
    words text[];
    w text;
    iw text;
    rec record;
    ok boolean;
    unit text;
    base date;
    tsq text;
BEGIN
    -- keep thousands separators inside numbers ("2,500,000"), drop other punctuation
    q := ' ' || regexp_replace(lower(coalesce(p_query, '')), '[\s;!?"()]+', ' ', 'g') || ' ';
    q := regexp_replace(q, '(\d),(\d{3})', '\1\2', 'g');
    q := regexp_replace(q, '(\d),(\d{3})', '\1\2', 'g');
    q := regexp_replace(q, ',', ' ', 'g');

    -- explicit ISO dates first, so they are not read as amounts
    m := regexp_match(q, '\m(?:between|from)\s+(\d{4}-\d{2}-\d{2})\s+(?:and|to|until|-)\s+(\d{4}-\d{2}-\d{2})\M');
    IF m IS NOT NULL THEN
        date_from := m[1]::date; date_to := m[2]::date; date_phrase := m[1] || '..' || m[2];
        q := regexp_replace(q, '\m(?:between|from)\s+(\d{4}-\d{2}-\d{2})\s+(?:and|to|until|-)\s+(\d{4}-\d{2}-\d{2})\M', ' ');
    END IF;
    m := regexp_match(q, '\m(before|by|until|till|after|since|on)\s+(\d{4}-\d{2}-\d{2})\M');
    IF m IS NOT NULL THEN
        IF m[1] IN ('after', 'since') THEN
            date_from := m[2]::date + CASE WHEN m[1] = 'after' THEN 1 ELSE 0 END;
        ELSIF m[1] = 'on' THEN
            date_from := m[2]::date; date_to := m[2]::date;
        ELSE
            date_to := m[2]::date - CASE WHEN m[1] = 'before' THEN 1 ELSE 0 END;
        END IF;
        date_phrase := m[1] || ' ' || m[2];
        q := regexp_replace(q, '\m(before|by|until|till|after|since|on)\s+(\d{4}-\d{2}-\d{2})\M', ' ');
    END IF;

    -- "closing" / "due" words make it a deal question
    IF q ~ '\m(closing|closes|close date|close|due|expected to close)\M' THEN
        closing := true;
        q := regexp_replace(q, '\m(expected to close|close date|closing|closes|close|due)\M', ' ', 'g');
    END IF;

    -- relative periods
    m := regexp_match(q, '\m(this|current|next|coming|last|previous|past)\s+(week|month|quarter|year)\M');
    IF m IS NOT NULL AND date_from IS NULL AND date_to IS NULL THEN
        step := CASE m[2] WHEN 'quarter' THEN interval '3 months' ELSE ('1 ' || m[2])::interval END;
        base := date_trunc(m[2], p_today::timestamp)::date;
        IF m[1] IN ('next', 'coming') THEN
            base := (base + step)::date;
        ELSIF m[1] IN ('last', 'previous', 'past') THEN
            base := (base - step)::date;
        END IF;
        date_from := base;
        date_to := (base + step)::date - 1;
        date_phrase := m[1] || ' ' || m[2];
        q := regexp_replace(q, '\m(?:in|during|for|from)?\s*(this|current|next|coming|last|previous|past)\s+(week|month|quarter|year)\M', ' ');
    END IF;
    m := regexp_match(q, '\m(next|coming|last|past)\s+(\d{1,4})\s+days?\M');
    IF m IS NOT NULL AND date_from IS NULL AND date_to IS NULL THEN
        IF m[1] IN ('next', 'coming') THEN
            date_from := p_today; date_to := p_today + m[2]::integer;
        ELSE
            date_from := p_today - m[2]::integer; date_to := p_today;
        END IF;
        date_phrase := m[1] || ' ' || m[2] || ' days';
        q := regexp_replace(q, '\m(?:in|during|for|within)?\s*(next|coming|last|past)\s+(\d{1,4})\s+days?\M', ' ');
    END IF;
    m := regexp_match(q, '\mq([1-4])(?:\s+(?:of\s+)?(\d{4}))?\M');
    IF m IS NOT NULL AND date_from IS NULL AND date_to IS NULL THEN
        date_from := make_date(coalesce(m[2]::integer, extract(year FROM p_today)::integer), (m[1]::integer - 1) * 3 + 1, 1);
        date_to := (date_from + interval '3 months')::date - 1;
        date_phrase := 'q' || m[1] || ' ' || extract(year FROM date_from)::text;
        q := regexp_replace(q, '\m(?:in|during)?\s*q([1-4])(?:\s+(?:of\s+)?(\d{4}))?\M', ' ');
    END IF;
    m := regexp_match(q, '\m(?:in|during)\s+((?:19|20)\d{2})\M');
    IF m IS NOT NULL AND date_from IS NULL AND date_to IS NULL THEN
        date_from := make_date(m[1]::integer, 1, 1); date_to := make_date(m[1]::integer, 12, 31);
        date_phrase := m[1];
        q := regexp_replace(q, '\m(?:in|during)\s+((?:19|20)\d{2})\M', ' ');
    END IF;

    -- amounts
    m := regexp_match(q, '\m(?:between|from)\s+' || num_re || '\s*(?:and|to|-)\s*' || num_re);
    IF m IS NOT NULL THEN
        unit := coalesce(m[4], m[2]);  -- "between 1 and 3M": the unit applies to both
        amount_min := sfbridge_search_amount(m[1], coalesce(m[2], unit));
        amount_max := sfbridge_search_amount(m[3], m[4]);
        q := regexp_replace(q, '\m(?:between|from)\s+' || num_re || '\s*(?:and|to|-)\s*' || num_re, ' ');
    END IF;
    m := regexp_match(q, '(?:\m(?:over|above|more than|greater than|bigger than|larger than|at least|exceeding|min|minimum)\M|>=?)\s*' || num_re);
    IF m IS NOT NULL THEN
        amount_min := sfbridge_search_amount(m[1], m[2]);
        q := regexp_replace(q, '(?:\m(?:over|above|more than|greater than|bigger than|larger than|at least|exceeding|min|minimum)\M|>=?)\s*' || num_re, ' ');
    END IF;
    m := regexp_match(q, '(?:\m(?:under|below|less than|smaller than|at most|up to|max|maximum)\M|<=?)\s*' || num_re);
    IF m IS NOT NULL THEN
        amount_max := sfbridge_search_amount(m[1], m[2]);
        q := regexp_replace(q, '(?:\m(?:under|below|less than|smaller than|at most|up to|max|maximum)\M|<=?)\s*' || num_re, ' ');
    END IF;

    -- object words
    IF q ~ '\m(deals?|opportunit(y|ies)|opps?|pipeline)\M' THEN types := types || 'Deal'::text; END IF;
    IF q ~ '\m(compan(y|ies)|accounts?|organi[sz]ations?|firms?)\M' THEN types := types || 'Company'::text; END IF;
    IF q ~ '\m(contacts?|people|persons?)\M' THEN types := types || 'Contact'::text; END IF;
    IF q ~ '\m(activit(y|ies)|meetings?|calls?|interactions?)\M' THEN types := types || 'Activity'::text; END IF;
    q := regexp_replace(q, '\m(deals?|opportunit(y|ies)|opps?|pipeline|compan(y|ies)|accounts?|organi[sz]ations?|firms?|contacts?|people|persons?|activit(y|ies)|meetings?|calls?|interactions?)\M', ' ', 'g');
    IF closing AND cardinality(types) = 0 THEN
        types := ARRAY['Deal'];
    END IF;

    -- owner
    m := regexp_match(q, '\m(?:owned by|owner is|owner|assigned to|managed by)\s+([a-z0-9@._''-]+)(?:\s+([a-z][a-z''-]+))?');
    IF m IS NOT NULL THEN
        owner := m[1];
        IF m[2] IS NOT NULL AND m[2] NOT IN ('in', 'with', 'and', 'or', 'over', 'under', 'above', 'below', 'at', 'for',
                                              'stage', 'open', 'won', 'lost', 'closed', 'from', 'between', 'this',
                                              'next', 'last', 'the', 'of') THEN
            owner := owner || ' ' || m[2];
        END IF;
        q := regexp_replace(q, '\m(?:owned by|owner is|owner|assigned to|managed by)\s+' || regexp_replace(owner, '([.^$*+?()\[\]{}|\\-])', '\\\1', 'g') || '\M', ' ');
    END IF;

    -- stages of the org's deals
    m := regexp_match(q, '\mstage\s+(?:is\s+)?([a-z][a-z./-]*)');
    IF m IS NOT NULL THEN
        SELECT coalesce(array_agg(DISTINCT d.stage), '{}') INTO stages FROM deals d
         WHERE d.org_id = p_org AND d.deleted_at IS NULL AND lower(d.stage) LIKE m[1] || '%';
        q := regexp_replace(q, '\mstage\s+(?:is\s+)?([a-z][a-z./-]*)', ' ');
    END IF;
    IF cardinality(stages) = 0 THEN
        FOR rec IN SELECT DISTINCT d.stage FROM deals d
                    WHERE d.org_id = p_org AND d.deleted_at IS NULL AND d.stage IS NOT NULL LOOP
            words := array_remove(regexp_split_to_array(lower(rec.stage), '[^a-z0-9]+'), '');
            ok := cardinality(words) > 0;
            FOREACH w IN ARRAY words LOOP
                IF q !~ ('\m' || w || 's?\M') THEN ok := false; END IF;
            END LOOP;
            IF ok THEN stages := stages || rec.stage; END IF;
        END LOOP;
        -- else a distinctive first word is enough ("negotiation" -> Negotiation/Review)
        IF cardinality(stages) = 0 THEN
            FOR rec IN SELECT DISTINCT d.stage FROM deals d
                        WHERE d.org_id = p_org AND d.deleted_at IS NULL AND d.stage IS NOT NULL LOOP
                words := array_remove(regexp_split_to_array(lower(rec.stage), '[^a-z0-9]+'), '');
                IF cardinality(words) > 0 AND length(words[1]) >= 6 AND words[1] <> 'closed'
                   AND q ~ ('\m' || words[1] || '\M') THEN
                    stages := stages || rec.stage;
                END IF;
            END LOOP;
        END IF;
        IF cardinality(stages) = 0 AND q ~ '\m(won|lost)\M' THEN
            SELECT coalesce(array_agg(DISTINCT d.stage), '{}') INTO stages FROM deals d
             WHERE d.org_id = p_org AND d.deleted_at IS NULL
               AND lower(d.stage) ~ ('\m(' || (regexp_match(q, '\m(won|lost)\M'))[1] || ')\M');
        END IF;
        IF cardinality(stages) = 0 AND q ~ '\mclosed\M' THEN
            SELECT coalesce(array_agg(DISTINCT d.stage), '{}') INTO stages FROM deals d
             WHERE d.org_id = p_org AND d.deleted_at IS NULL AND lower(d.stage) LIKE 'closed%';
        END IF;
        FOREACH w IN ARRAY stages LOOP
            FOREACH iw IN ARRAY array_remove(regexp_split_to_array(lower(w), '[^a-z0-9]+'), '') LOOP
                q := regexp_replace(q, '\m' || iw || 's?\M', ' ', 'g');
            END LOOP;
        END LOOP;
        IF cardinality(stages) > 0 THEN
            q := regexp_replace(q, '\m(won|lost|closed)\M', ' ', 'g');
        END IF;
    END IF;
    IF q ~ '\mopen\M' THEN
        open_only := true;
        q := regexp_replace(q, '\mopen\M', ' ', 'g');
    END IF;
    IF (cardinality(stages) > 0 OR open_only) AND cardinality(types) = 0 THEN
        types := ARRAY['Deal'];
    END IF;

    -- industries of the org's companies: every word present, or a query word that is a
    -- prefix of (or shares 6 letters with) a one-word industry ("tech" -> Technology)
    FOR rec IN SELECT DISTINCT c.industry FROM companies c
                WHERE c.org_id = p_org AND c.deleted_at IS NULL AND c.industry IS NOT NULL LOOP
        words := array_remove(regexp_split_to_array(lower(rec.industry), '[^a-z0-9]+'), '');
        words := array(SELECT x FROM unnest(words) x WHERE x NOT IN ('and', 'of', 'for', 'the', 'not'));
        IF cardinality(words) = 0 THEN CONTINUE; END IF;
        ok := true;
        FOREACH w IN ARRAY words LOOP
            IF q !~ ('\m' || w || 's?\M') THEN ok := false; END IF;
        END LOOP;
        IF ok THEN
            industries := industries || rec.industry;
            FOREACH w IN ARRAY words LOOP
                q := regexp_replace(q, '\m' || w || 's?\M', ' ', 'g');
            END LOOP;
            CONTINUE;
        END IF;
        IF cardinality(words) = 1 THEN
            FOREACH w IN ARRAY array_remove(regexp_split_to_array(q, '[^a-z0-9]+'), '') LOOP
                IF length(w) >= 4 AND (words[1] LIKE w || '%' OR sfbridge_search_common_prefix(w, words[1]) >= 6) THEN
                    industries := industries || rec.industry;
                    q := regexp_replace(q, '\m' || w || '\M', ' ', 'g');
                    EXIT;
                END IF;
            END LOOP;
        END IF;
    END LOOP;

    -- filler words a chat layer or a person adds
    q := regexp_replace(q, '\m(show|find|list|get|give|search|display|me|please|any|all|what|which|are|is|our|my|with|in|for|of|the|and|that|who|work|works|at)\M', ' ', 'g');
    q := btrim(regexp_replace(q, '\s+', ' ', 'g'));

    SELECT string_agg(quote_literal(t.lexeme) || ':*', ' & ' ORDER BY t.positions[1]) INTO tsq
      FROM unnest(to_tsvector('english'::regconfig, q)) t;

    RETURN jsonb_build_object(
        'types', to_jsonb(types),
        'amount_min', amount_min,
        'amount_max', amount_max,
        'date_from', date_from,
        'date_to', date_to,
        'date_phrase', date_phrase,
        'stages', to_jsonb(stages),
        'open_only', open_only,
        'industries', to_jsonb(industries),
        'owner', owner,
        'text', q,
        'tsquery', tsq);
END
$$;

CREATE FUNCTION sfbridge_search(p_org text, p_query text, p_lim integer DEFAULT 20, p_today date DEFAULT current_date)
RETURNS TABLE (object text, sf_object text, id uuid, salesforce_id text, name text, company text, industry text,
               stage text, amount numeric, close_date date, starts_at timestamptz, email text, owner_id text,
               rank real, url text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    f jsonb := sfbridge_search_parse(p_org, p_query, p_today);
    types text[] := array(SELECT jsonb_array_elements_text(f->'types'));
    stages text[] := array(SELECT jsonb_array_elements_text(f->'stages'));
    inds text[] := array(SELECT jsonb_array_elements_text(f->'industries'));
    amin numeric := (f->>'amount_min')::numeric;
    amax numeric := (f->>'amount_max')::numeric;
    dfrom date := (f->>'date_from')::date;
    dto date := (f->>'date_to')::date;
    open_only boolean := (f->>'open_only')::boolean;
    own text := f->>'owner';
    txt text := f->>'text';
    tsq_and tsquery;
    tsq tsquery;
    want_company boolean;
    want_deal boolean;
    want_contact boolean;
    want_activity boolean;
    lim integer := least(greatest(coalesce(p_lim, 20), 1), 1000);
    pass integer;
BEGIN
    IF f->>'tsquery' IS NOT NULL THEN
        tsq_and := to_tsquery('simple'::regconfig, f->>'tsquery');
    END IF;
    -- nothing understood and nothing to match: no results rather than everything
    IF tsq_and IS NULL AND cardinality(types) = 0 AND cardinality(stages) = 0 AND cardinality(inds) = 0
       AND amin IS NULL AND amax IS NULL AND dfrom IS NULL AND dto IS NULL AND own IS NULL AND NOT open_only THEN
        RETURN;
    END IF;
    want_deal := cardinality(types) = 0 OR 'Deal' = ANY (types);
    want_company := (cardinality(types) = 0 OR 'Company' = ANY (types))
                    AND cardinality(stages) = 0 AND NOT open_only AND dfrom IS NULL AND dto IS NULL
                    AND ((amin IS NULL AND amax IS NULL) OR 'Company' = ANY (types));
    want_contact := (cardinality(types) = 0 OR 'Contact' = ANY (types))
                    AND cardinality(stages) = 0 AND NOT open_only AND dfrom IS NULL AND dto IS NULL
                    AND amin IS NULL AND amax IS NULL;
    want_activity := (cardinality(types) = 0 OR 'Activity' = ANY (types))
                     AND cardinality(stages) = 0 AND NOT open_only AND amin IS NULL AND amax IS NULL;

    FOR pass IN 1..2 LOOP
        IF pass = 1 THEN
            tsq := tsq_and;
        ELSE
            EXIT WHEN tsq_and IS NULL OR f->>'tsquery' NOT LIKE '%&%';
            tsq := to_tsquery('simple'::regconfig, replace(f->>'tsquery', ' & ', ' | '));
        END IF;
        RETURN QUERY
        WITH hits AS (
            SELECT 'Company'::text AS object,
                   coalesce((SELECT om.sf_object FROM object_mappings om
                              WHERE om.org_id = p_org AND om.platform_object = 'Company' ORDER BY om.sf_object LIMIT 1),
                            'Account') AS sf_object,
                   c.id, c.salesforce_id::text AS salesforce_id, c.name, c.name AS company, c.industry,
                   NULL::text AS stage, c.annual_revenue AS amount, NULL::date AS close_date,
                   NULL::timestamptz AS starts_at, NULL::text AS email, c.owner_id::text AS owner_id,
                   (CASE WHEN tsq IS NULL THEN 0
                         ELSE ts_rank(sfbridge_company_tsv(c.name, c.industry, c.type, c.website, c.billing_city,
                                                           c.billing_country, c.attributes), tsq) END
                    + CASE WHEN txt <> '' AND lower(c.name) = txt THEN 1.05
                           WHEN txt <> '' AND lower(c.name) LIKE txt || '%' THEN 0.35 ELSE 0 END)::real AS rank,
                   c.connection_id, c.attributes
              FROM companies c
             WHERE want_company AND c.org_id = p_org AND c.deleted_at IS NULL
               AND (tsq IS NULL OR sfbridge_company_tsv(c.name, c.industry, c.type, c.website, c.billing_city,
                                                        c.billing_country, c.attributes) @@ tsq)
               AND (cardinality(inds) = 0 OR c.industry = ANY (inds))
               AND (amin IS NULL OR c.annual_revenue >= amin)
               AND (amax IS NULL OR c.annual_revenue <= amax)
            UNION ALL
            SELECT 'Deal', coalesce((SELECT om.sf_object FROM object_mappings om
                                      WHERE om.org_id = p_org AND om.platform_object = 'Deal' ORDER BY om.sf_object LIMIT 1),
                                    'Opportunity'),
                   d.id, d.salesforce_id::text, d.name, coalesce(c.name, c2.name), coalesce(c.industry, c2.industry),
                   d.stage, d.amount, d.close_date, NULL::timestamptz, NULL::text, d.owner_id::text,
                   (CASE WHEN tsq IS NULL THEN 0
                         ELSE greatest(ts_rank(sfbridge_deal_tsv(d.name, d.stage, d.type, d.attributes), tsq),
                                       0.6 * ts_rank(sfbridge_company_tsv(coalesce(c.name, c2.name), NULL, NULL, NULL, NULL,
                                                                   NULL, NULL), tsq)) END
                    + CASE WHEN txt <> '' AND lower(d.name) = txt THEN 1
                           WHEN txt <> '' AND lower(d.name) LIKE txt || '%' THEN 0.3 ELSE 0 END)::real,
                   d.connection_id, d.attributes
              FROM deals d
              LEFT JOIN companies c ON c.id = d.company_id
              LEFT JOIN companies c2 ON d.company_id IS NULL AND c2.org_id = d.org_id
                                    AND c2.salesforce_id = d.company_sf_id AND c2.deleted_at IS NULL
             WHERE want_deal AND d.org_id = p_org AND d.deleted_at IS NULL
               AND (tsq IS NULL OR sfbridge_deal_tsv(d.name, d.stage, d.type, d.attributes) @@ tsq
                    OR sfbridge_company_tsv(coalesce(c.name, c2.name), NULL, NULL, NULL, NULL, NULL, NULL) @@ tsq)
               AND (cardinality(inds) = 0 OR coalesce(c.industry, c2.industry) = ANY (inds))
               AND (cardinality(stages) = 0 OR d.stage = ANY (stages))
               AND (NOT open_only OR lower(coalesce(d.stage, '')) NOT LIKE 'closed%')
               AND (amin IS NULL OR d.amount >= amin)
               AND (amax IS NULL OR d.amount <= amax)
               AND (dfrom IS NULL OR d.close_date >= dfrom)
               AND (dto IS NULL OR d.close_date <= dto)
            UNION ALL
            SELECT 'Contact', coalesce((SELECT om.sf_object FROM object_mappings om
                                         WHERE om.org_id = p_org AND om.platform_object = 'Contact' ORDER BY om.sf_object LIMIT 1),
                                       'Contact'),
                   p.id, p.salesforce_id::text, btrim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')),
                   coalesce(c.name, c2.name), coalesce(c.industry, c2.industry), NULL::text, NULL::numeric,
                   NULL::date, NULL::timestamptz, p.email, p.owner_id::text,
                   (CASE WHEN tsq IS NULL THEN 0
                         ELSE greatest(ts_rank(sfbridge_contact_tsv(p.first_name, p.last_name, p.email, p.title,
                                                                    p.phone, p.attributes), tsq),
                                       0.4 * ts_rank(sfbridge_company_tsv(coalesce(c.name, c2.name), NULL, NULL, NULL,
                                                                          NULL, NULL, NULL), tsq)) END
                    + CASE WHEN txt <> '' AND lower(btrim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, ''))) = txt
                           THEN 1 ELSE 0 END)::real,
                   p.connection_id, p.attributes
              FROM contacts p
              LEFT JOIN companies c ON c.id = p.company_id
              LEFT JOIN companies c2 ON p.company_id IS NULL AND c2.org_id = p.org_id
                                    AND c2.salesforce_id = p.company_sf_id AND c2.deleted_at IS NULL
             WHERE want_contact AND p.org_id = p_org AND p.deleted_at IS NULL
               AND (tsq IS NULL OR sfbridge_contact_tsv(p.first_name, p.last_name, p.email, p.title, p.phone,
                                                        p.attributes) @@ tsq
                    OR sfbridge_company_tsv(coalesce(c.name, c2.name), NULL, NULL, NULL, NULL, NULL, NULL) @@ tsq)
               AND (cardinality(inds) = 0 OR coalesce(c.industry, c2.industry) = ANY (inds))
            UNION ALL
            SELECT 'Activity', a.sf_object, a.id, a.salesforce_id::text, a.subject, coalesce(c.name, c2.name),
                   coalesce(c.industry, c2.industry), NULL::text, NULL::numeric, NULL::date, a.start_time, NULL::text,
                   a.owner_id::text,
                   (CASE WHEN tsq IS NULL THEN 0
                         ELSE greatest(ts_rank(sfbridge_activity_tsv(a.subject, a.activity_type, a.description,
                                                                     a.attributes), tsq),
                                       0.4 * ts_rank(sfbridge_company_tsv(coalesce(c.name, c2.name), NULL, NULL, NULL,
                                                                          NULL, NULL, NULL), tsq)) END)::real,
                   a.connection_id, a.attributes
              FROM activities a
              LEFT JOIN companies c ON c.id = a.company_id
              LEFT JOIN companies c2 ON a.company_id IS NULL AND c2.org_id = a.org_id
                                    AND c2.salesforce_id = a.company_sf_id AND c2.deleted_at IS NULL
             WHERE want_activity AND a.org_id = p_org AND a.deleted_at IS NULL
               AND (tsq IS NULL OR sfbridge_activity_tsv(a.subject, a.activity_type, a.description, a.attributes) @@ tsq
                    OR sfbridge_company_tsv(coalesce(c.name, c2.name), NULL, NULL, NULL, NULL, NULL, NULL) @@ tsq)
               AND (cardinality(inds) = 0 OR coalesce(c.industry, c2.industry) = ANY (inds))
               AND (dfrom IS NULL OR a.start_time >= dfrom::timestamptz)
               AND (dto IS NULL OR a.start_time < (dto + 1)::timestamptz)
        )
        SELECT h.object, h.sf_object, h.id, h.salesforce_id, h.name, h.company, h.industry, h.stage, h.amount,
               h.close_date, h.starts_at, h.email, h.owner_id, h.rank,
               CASE WHEN cn.instance_url IS NOT NULL AND h.salesforce_id IS NOT NULL
                    THEN rtrim(cn.instance_url, '/') || '/' || btrim(h.salesforce_id) END
          FROM hits h
          LEFT JOIN connections cn ON cn.connection_id = h.connection_id
         WHERE own IS NULL
            OR lower(btrim(coalesce(h.owner_id, ''))) = own
            OR lower(substr(btrim(coalesce(h.owner_id, '')), 1, 15)) = substr(own, 1, 15) AND length(own) >= 15
            OR lower(coalesce(h.attributes->>'owner_name', h.attributes->>'owner', '')) LIKE '%' || own || '%'
            OR lower(coalesce(h.attributes->>'owner_email', '')) LIKE own || '%'
         ORDER BY h.rank DESC, h.amount DESC NULLS LAST, h.close_date NULLS LAST, h.name, h.salesforce_id
         LIMIT lim;
        EXIT WHEN FOUND;
    END LOOP;
END
$$;

GRANT EXECUTE ON FUNCTION sfbridge_search(text, text, integer, date), sfbridge_search_parse(text, text, date)
    TO sfbridge_worker;
