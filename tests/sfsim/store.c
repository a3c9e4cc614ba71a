/*
 * store: the in-memory record store of the emulator.
 *
 * Records are fixed-size (one 8-byte slot per field plus a null bitmap) and
 * live in slabs that never move, so a reference field simply points at the
 * target record's id text and an index stays valid forever (hard deletes only
 * mark a record purged). Strings live in an append-only arena freed with the
 * store. External-id / unique fields have a hash index. Account.Open_Pipeline__c
 * is a roll-up kept incrementally in rec->agg: it changes whenever an
 * Opportunity changes, without touching the Account's SystemModstamp.
 *
 * Threads: callers hold s->lock (read for reads, write for writes); the
 * *_locked functions never take it themselves.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "simint.h"

#define SLAB_BITS 12
#define SLAB (1u << SLAB_BITS)

/* ---------------------------------------------------------------- arena */
struct sim_arena_chunk {
    struct sim_arena_chunk *next;
    size_t used, cap;
    char data[];
};

const char *sim_arena_strdup(struct sim_store *s, const char *str, size_t n)
{
    struct sim_arena_chunk *c = s->arena;
    if (!c || c->used + n + 1 > c->cap) {
        size_t cap = n + 1 > (1u << 20) ? n + 1 : (1u << 20);
        c = malloc(sizeof *c + cap);
        if (!c)
            abort();
        c->next = s->arena;
        c->used = 0;
        c->cap = cap;
        s->arena = c;
    }
    char *p = c->data + c->used;
    memcpy(p, str, n);
    p[n] = '\0';
    c->used += n + 1;
    return p;
}

/* ---------------------------------------------------------------- fields */
/* well-known field indexes, resolved once */
static struct {
    int a_name, a_open;
    int c_acct, c_first, c_last, c_name, c_email;
    int o_acct, o_name, o_amount, o_close, o_stage, o_prob, o_fc, o_fcn, o_closed,
        o_won, o_fy, o_fq, o_exp, o_hasli;
    int t_who, t_what, t_acct, t_status, t_prio, t_high, t_closed, t_done, t_arch;
    int e_who, e_what, e_acct, e_start, e_end, e_dur, e_allday, e_adate, e_adt,
        e_arch, e_private;
    int u_first, u_last, u_name, u_active;
    int i_acct, i_rel;
    int ia_inter, ia_org;
} F;
static pthread_once_t f_once = PTHREAD_ONCE_INIT;

static int fx(int obj, const char *name)
{
    int f = sim_field_find(&sim_objects[obj], name);
    if (f < 0)
        abort();
    return f;
}

static void f_init(void)
{
    F.a_name = fx(SIM_ACCOUNT, "Name");
    F.a_open = fx(SIM_ACCOUNT, "Open_Pipeline__c");
    F.c_acct = fx(SIM_CONTACT, "AccountId");
    F.c_first = fx(SIM_CONTACT, "FirstName");
    F.c_last = fx(SIM_CONTACT, "LastName");
    F.c_name = fx(SIM_CONTACT, "Name");
    F.c_email = fx(SIM_CONTACT, "Email");
    F.o_acct = fx(SIM_OPPORTUNITY, "AccountId");
    F.o_name = fx(SIM_OPPORTUNITY, "Name");
    F.o_amount = fx(SIM_OPPORTUNITY, "Amount");
    F.o_close = fx(SIM_OPPORTUNITY, "CloseDate");
    F.o_stage = fx(SIM_OPPORTUNITY, "StageName");
    F.o_prob = fx(SIM_OPPORTUNITY, "Probability");
    F.o_fc = fx(SIM_OPPORTUNITY, "ForecastCategory");
    F.o_fcn = fx(SIM_OPPORTUNITY, "ForecastCategoryName");
    F.o_closed = fx(SIM_OPPORTUNITY, "IsClosed");
    F.o_won = fx(SIM_OPPORTUNITY, "IsWon");
    F.o_fy = fx(SIM_OPPORTUNITY, "FiscalYear");
    F.o_fq = fx(SIM_OPPORTUNITY, "FiscalQuarter");
    F.o_exp = fx(SIM_OPPORTUNITY, "Expected_Revenue__c");
    F.o_hasli = fx(SIM_OPPORTUNITY, "HasOpportunityLineItem");
    F.t_who = fx(SIM_TASK, "WhoId");
    F.t_what = fx(SIM_TASK, "WhatId");
    F.t_acct = fx(SIM_TASK, "AccountId");
    F.t_status = fx(SIM_TASK, "Status");
    F.t_prio = fx(SIM_TASK, "Priority");
    F.t_high = fx(SIM_TASK, "IsHighPriority");
    F.t_closed = fx(SIM_TASK, "IsClosed");
    F.t_done = fx(SIM_TASK, "CompletedDateTime");
    F.t_arch = fx(SIM_TASK, "IsArchived");
    F.e_who = fx(SIM_EVENT, "WhoId");
    F.e_what = fx(SIM_EVENT, "WhatId");
    F.e_acct = fx(SIM_EVENT, "AccountId");
    F.e_start = fx(SIM_EVENT, "StartDateTime");
    F.e_end = fx(SIM_EVENT, "EndDateTime");
    F.e_dur = fx(SIM_EVENT, "DurationInMinutes");
    F.e_allday = fx(SIM_EVENT, "IsAllDayEvent");
    F.e_adate = fx(SIM_EVENT, "ActivityDate");
    F.e_adt = fx(SIM_EVENT, "ActivityDateTime");
    F.e_arch = fx(SIM_EVENT, "IsArchived");
    F.e_private = fx(SIM_EVENT, "IsPrivate");
    F.u_first = fx(SIM_USER, "FirstName");
    F.u_last = fx(SIM_USER, "LastName");
    F.u_name = fx(SIM_USER, "Name");
    F.u_active = fx(SIM_USER, "IsActive");
    F.i_acct = fx(SIM_INTERACTION, "AccountId");
    F.i_rel = fx(SIM_INTERACTION, "RelatedRecordId");
    F.ia_inter = fx(SIM_INTERACTION_ATTENDEE, "InteractionId");
    F.ia_org = fx(SIM_INTERACTION_ATTENDEE, "IsOrganizer");
    for (int o = 0; o < SIM_NOBJ; o++) {
        const struct sim_object *ob = &sim_objects[o];
        if (ob->nfields > 64 || strcmp(ob->fields[ob->f_sysmod].name, "SystemModstamp") ||
            (ob->f_name >= 0 && strcmp(ob->fields[ob->f_name].name, "Name")) ||
            (ob->f_owner >= 0 && strcmp(ob->fields[ob->f_owner].name, "OwnerId")))
            abort(); /* schema table out of sync with its constants */
    }
}

/* ---------------------------------------------------------------- records */
struct sim_rec *sim_rec_at(const struct sim_store *s, int obj, uint32_t idx)
{
    const struct sim_table *t = &s->t[obj];
    return (struct sim_rec *)(t->slabs[idx >> SLAB_BITS] +
                              (size_t)(idx & (SLAB - 1)) * t->stride);
}

static inline bool isnull(const struct sim_rec *r, int f) { return (r->nulls >> f) & 1u; }
static inline void setnull(struct sim_rec *r, int f) { r->nulls |= (uint64_t)1 << f; }
static inline void clrnull(struct sim_rec *r, int f) { r->nulls &= ~((uint64_t)1 << f); }

static void set_i(struct sim_rec *r, int f, int64_t v)
{
    r->v[f].i = v;
    clrnull(r, f);
}
static void set_d(struct sim_rec *r, int f, double v)
{
    r->v[f].d = v;
    clrnull(r, f);
}
static void set_s(struct sim_rec *r, int f, const char *v)
{
    if (!v || !*v) {
        setnull(r, f);
        return;
    }
    r->v[f].s = v;
    clrnull(r, f);
}
static const char *get_s(const struct sim_rec *r, int f)
{
    return isnull(r, f) ? NULL : r->v[f].s;
}

bool sim_rec_deleted(const struct sim_store *s, int obj, const struct sim_rec *r)
{
    (void)s;
    return r->v[sim_objects[obj].f_isdeleted].i != 0;
}

struct sim_rec *sim_store_find(const struct sim_store *s, const char *id,
                               int *obj, uint32_t *idx)
{
    char id18[19], pfx[4];
    uint64_t n;
    if (!id || !sim_id_to18(id, id18) || !sim_id_decode(id18, pfx, &n))
        return NULL;
    int o = sim_object_by_prefix(pfx);
    if (o < 0 || n == 0 || n > s->t[o].n)
        return NULL;
    /* counters start at 1 so no id is all zeros */
    struct sim_rec *r = sim_rec_at(s, o, (uint32_t)(n - 1));
    if (r->purged || strcmp(r->id, id18) != 0)
        return NULL;
    if (obj)
        *obj = o;
    if (idx)
        *idx = (uint32_t)(n - 1);
    return r;
}

struct sim_val sim_get(const struct sim_store *s, int obj,
                       const struct sim_rec *r, int f)
{
    (void)s;
    const struct sim_field *fd = &sim_objects[obj].fields[f];
    struct sim_val v = {.sc = sim_sclass(fd->type), .null = false};
    if (f == 0) {
        v.u.s = r->id;
        return v;
    }
    if (obj == SIM_ACCOUNT && f == F.a_open) {
        v.u.d = round(r->agg * 100.0) / 100.0;
        return v;
    }
    if (obj == SIM_OPPORTUNITY && f == F.o_exp) {
        if (isnull(r, F.o_amount) || isnull(r, F.o_prob)) {
            v.null = true;
            return v;
        }
        v.u.d = round(r->v[F.o_amount].d * r->v[F.o_prob].d) / 100.0;
        return v;
    }
    if (isnull(r, f)) {
        v.null = true;
        return v;
    }
    v.u = r->v[f];
    return v;
}

/* ---------------------------------------------------------------- hash index */
struct sim_hidx {
    uint32_t *slot; /* 0 empty, 1 tombstone, idx+2 */
    size_t cap, used;
    int obj, f;
};

static uint64_t hstr(const char *str)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *str; str++) {
        h ^= (unsigned char)tolower((unsigned char)*str);
        h *= 1099511628211ULL;
    }
    return h;
}

static void hidx_insert(struct sim_store *s, struct sim_hidx *h, uint32_t idx,
                        const char *val);

static void hidx_grow(struct sim_store *s, struct sim_hidx *h)
{
    uint32_t *old = h->slot;
    size_t oldcap = h->cap;
    h->cap = h->cap ? h->cap * 2 : 1024;
    h->slot = calloc(h->cap, sizeof *h->slot);
    if (!h->slot)
        abort();
    h->used = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i] < 2)
            continue;
        uint32_t idx = old[i] - 2;
        hidx_insert(s, h, idx, sim_rec_at(s, h->obj, idx)->v[h->f].s);
    }
    free(old);
}

static void hidx_insert(struct sim_store *s, struct sim_hidx *h, uint32_t idx,
                        const char *val)
{
    if ((h->used + 1) * 10 >= h->cap * 7)
        hidx_grow(s, h);
    size_t m = h->cap - 1, i = hstr(val) & m;
    while (h->slot[i] >= 2)
        i = (i + 1) & m;
    if (h->slot[i] == 0)
        h->used++;
    h->slot[i] = idx + 2;
}

static void hidx_remove(struct sim_hidx *h, uint32_t idx, const char *val)
{
    if (!h->cap)
        return;
    size_t m = h->cap - 1, i = hstr(val) & m;
    while (h->slot[i] != 0) {
        if (h->slot[i] == idx + 2) {
            h->slot[i] = 1;
            return;
        }
        i = (i + 1) & m;
    }
}

size_t sim_store_lookup_locked(const struct sim_store *s, int obj, int f,
                               const char *value, uint32_t *out, size_t max)
{
    const struct sim_hidx *h = s->t[obj].hidx[f];
    size_t n = 0;
    if (!h || !h->cap || !value)
        return 0;
    size_t m = h->cap - 1, i = hstr(value) & m;
    while (h->slot[i] != 0) {
        if (h->slot[i] >= 2) {
            uint32_t idx = h->slot[i] - 2;
            const struct sim_rec *r = sim_rec_at(s, obj, idx);
            if (strcasecmp(r->v[f].s, value) == 0) {
                if (n < max)
                    out[n] = idx;
                n++;
            }
        }
        i = (i + 1) & m;
    }
    return n;
}

/* adds (sign > 0) or removes the record's contributions to indexes and
 * roll-ups; call with -1 before and +1 after every change */
static void rec_index(struct sim_store *s, int obj, uint32_t idx, int sign)
{
    struct sim_rec *r = sim_rec_at(s, obj, idx);
    if (r->purged || sim_rec_deleted(s, obj, r))
        return;
    struct sim_table *t = &s->t[obj];
    for (int f = 0; f < sim_objects[obj].nfields; f++) {
        if (!t->hidx[f] || isnull(r, f))
            continue;
        if (sign > 0)
            hidx_insert(s, t->hidx[f], idx, r->v[f].s);
        else
            hidx_remove(t->hidx[f], idx, r->v[f].s);
    }
    if (obj == SIM_OPPORTUNITY && !isnull(r, F.o_acct) && !isnull(r, F.o_amount) &&
        !r->v[F.o_closed].i) {
        uint32_t aidx;
        struct sim_rec *a = sim_store_find(s, r->v[F.o_acct].s, NULL, &aidx);
        if (a)
            a->agg += sign * r->v[F.o_amount].d;
    }
}

static uint32_t rec_alloc(struct sim_store *s, int obj)
{
    struct sim_table *t = &s->t[obj];
    uint32_t idx = t->n;
    if ((idx >> SLAB_BITS) >= t->nslabs) {
        char **sl = realloc(t->slabs, (t->nslabs + 1) * sizeof *sl);
        if (!sl)
            abort();
        t->slabs = sl;
        t->slabs[t->nslabs] = calloc(SLAB, t->stride);
        if (!t->slabs[t->nslabs])
            abort();
        t->nslabs++;
    }
    t->n++;
    struct sim_rec *r = sim_rec_at(s, obj, idx);
    memset(r, 0, t->stride);
    r->nulls = ~(uint64_t)0;
    sim_id_make(sim_objects[obj].prefix, (uint64_t)idx + 1, r->id);
    return idx;
}

static void undo_save(struct sim_store *s, int obj, uint32_t idx, bool created)
{
    struct sim_undo *u = s->undo;
    if (!u)
        return;
    if (u->n == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 16;
        struct sim_undo_ent *e = realloc(u->e, u->cap * sizeof *e);
        if (!e)
            abort();
        u->e = e;
    }
    struct sim_undo_ent *e = &u->e[u->n++];
    e->obj = obj;
    e->idx = idx;
    e->created = created;
    e->copy = NULL;
    if (!created) {
        e->copy = malloc(s->t[obj].stride);
        if (!e->copy)
            abort();
        memcpy(e->copy, sim_rec_at(s, obj, idx), s->t[obj].stride);
    }
}

void sim_undo_begin(struct sim_store *s, struct sim_undo *u)
{
    memset(u, 0, sizeof *u);
    s->undo = u;
}

void sim_undo_rollback(struct sim_store *s, struct sim_undo *u)
{
    s->undo = NULL;
    for (size_t i = u->n; i-- > 0;) {
        struct sim_undo_ent *e = &u->e[i];
        rec_index(s, e->obj, e->idx, -1);
        struct sim_rec *r = sim_rec_at(s, e->obj, e->idx);
        if (e->created) {
            r->purged = 1;
            continue;
        }
        memcpy(r, e->copy, s->t[e->obj].stride);
        rec_index(s, e->obj, e->idx, +1);
    }
    sim_undo_end(s, u);
}

void sim_undo_end(struct sim_store *s, struct sim_undo *u)
{
    s->undo = NULL;
    for (size_t i = 0; i < u->n; i++)
        free(u->e[i].copy);
    free(u->e);
    memset(u, 0, sizeof *u);
}

/* ---------------------------------------------------------------- derived */
static const struct {
    const char *stage;
    int prob;
    const char *fc;
    bool closed, won;
} stage_info[] = {
    {"Prospecting", 10, "Pipeline", false, false},
    {"Qualification", 10, "Pipeline", false, false},
    {"Needs Analysis", 20, "Pipeline", false, false},
    {"Value Proposition", 50, "Pipeline", false, false},
    {"Id. Decision Makers", 60, "Pipeline", false, false},
    {"Perception Analysis", 70, "Pipeline", false, false},
    {"Proposal/Price Quote", 75, "Pipeline", false, false},
    {"Negotiation/Review", 90, "Pipeline", false, false},
    {"Closed Won", 100, "Closed", true, true},
    {"Closed Lost", 0, "Omitted", true, false},
};

static int stage_find(const char *st)
{
    for (size_t i = 0; i < sizeof stage_info / sizeof stage_info[0]; i++)
        if (st && strcasecmp(stage_info[i].stage, st) == 0)
            return (int)i;
    return -1;
}

static void derive_name(struct sim_store *s, struct sim_rec *r, int ff, int fl,
                        int fn)
{
    const char *a = get_s(r, ff), *b = get_s(r, fl);
    char tmp[256];
    if (a && b)
        snprintf(tmp, sizeof tmp, "%s %s", a, b);
    else
        snprintf(tmp, sizeof tmp, "%s", a ? a : b ? b : "");
    if (!tmp[0]) {
        setnull(r, fn);
        return;
    }
    const char *old = get_s(r, fn);
    if (old && strcmp(old, tmp) == 0)
        return;
    set_s(r, fn, sim_arena_strdup(s, tmp, strlen(tmp)));
}

static const char *activity_account(struct sim_store *s, const struct sim_rec *r,
                                    int fwhat, int fwho)
{
    int o;
    const char *what = get_s(r, fwhat), *who = get_s(r, fwho);
    if (what) {
        struct sim_rec *w = sim_store_find(s, what, &o, NULL);
        if (w && o == SIM_ACCOUNT)
            return w->id;
        if (w && o == SIM_OPPORTUNITY)
            return get_s(w, F.o_acct);
    }
    if (who) {
        struct sim_rec *w = sim_store_find(s, who, &o, NULL);
        if (w && o == SIM_CONTACT)
            return get_s(w, F.c_acct);
    }
    return NULL;
}

/* recomputes read-only fields from their inputs; staged[f] says whether f
 * was written in this change */
static void derive(struct sim_store *s, int obj, struct sim_rec *r,
                   const bool *staged, bool insert, int64_t now)
{
    switch (obj) {
    case SIM_CONTACT:
        derive_name(s, r, F.c_first, F.c_last, F.c_name);
        break;
    case SIM_USER:
        derive_name(s, r, F.u_first, F.u_last, F.u_name);
        break;
    case SIM_OPPORTUNITY: {
        int si = stage_find(get_s(r, F.o_stage));
        bool stage_changed = insert || (staged && staged[F.o_stage]);
        if (si >= 0) {
            set_i(r, F.o_closed, stage_info[si].closed);
            set_i(r, F.o_won, stage_info[si].won);
            if (stage_changed && !(staged && staged[F.o_prob]))
                set_d(r, F.o_prob, stage_info[si].prob);
            if (stage_changed && !(staged && staged[F.o_fcn]))
                set_s(r, F.o_fcn, stage_info[si].fc);
        } else {
            set_i(r, F.o_closed, 0);
            set_i(r, F.o_won, 0);
            if (stage_changed && !(staged && staged[F.o_fcn]))
                set_s(r, F.o_fcn, "Pipeline");
        }
        if (!isnull(r, F.o_fcn))
            set_s(r, F.o_fc, r->v[F.o_fcn].s);
        if (!isnull(r, F.o_close)) {
            int y, m, d;
            sim_civil_from_days(r->v[F.o_close].i, &y, &m, &d);
            set_i(r, F.o_fy, y);
            set_i(r, F.o_fq, (m - 1) / 3 + 1);
        }
        set_i(r, F.o_hasli, 0);
        break;
    }
    case SIM_TASK: {
        const char *st = get_s(r, F.t_status);
        bool closed = st && strcasecmp(st, "Completed") == 0;
        if (closed && !r->v[F.t_closed].i)
            set_i(r, F.t_done, now);
        if (!closed)
            setnull(r, F.t_done);
        set_i(r, F.t_closed, closed);
        const char *pr = get_s(r, F.t_prio);
        set_i(r, F.t_high, pr && strcasecmp(pr, "High") == 0);
        set_i(r, F.t_arch, 0);
        set_s(r, F.t_acct, activity_account(s, r, F.t_what, F.t_who));
        break;
    }
    case SIM_EVENT: {
        set_s(r, F.e_acct, activity_account(s, r, F.e_what, F.e_who));
        if (!isnull(r, F.e_start)) {
            int64_t st = r->v[F.e_start].i;
            if (staged && staged[F.e_end] && !staged[F.e_dur] && !isnull(r, F.e_end))
                set_i(r, F.e_dur, (r->v[F.e_end].i - st) / 60000);
            else if (!isnull(r, F.e_dur))
                set_i(r, F.e_end, st + r->v[F.e_dur].i * 60000);
            else if (!isnull(r, F.e_end))
                set_i(r, F.e_dur, (r->v[F.e_end].i - st) / 60000);
            set_i(r, F.e_adt, st);
            set_i(r, F.e_adate, st >= 0 ? st / 86400000 : (st - 86399999) / 86400000);
        }
        if (isnull(r, F.e_allday))
            set_i(r, F.e_allday, 0);
        if (isnull(r, F.e_private))
            set_i(r, F.e_private, 0);
        set_i(r, F.e_arch, 0);
        break;
    }
    case SIM_INTERACTION_ATTENDEE:
        if (isnull(r, F.ia_org))
            set_i(r, F.ia_org, 0); /* defaults to false */
        break;
    default:
        break;
    }
}

static void stamp(struct sim_store *s, int obj, struct sim_rec *r, int64_t now,
                  const char *user, bool insert)
{
    (void)s;
    const struct sim_object *o = &sim_objects[obj];
    int64_t sec = now - now % 1000; /* Salesforce stamps have whole seconds */
    if (insert) {
        set_i(r, o->f_created, sec);
        set_s(r, o->f_createdby, user);
        set_i(r, o->f_isdeleted, 0);
        if (o->f_owner >= 0 && isnull(r, o->f_owner))
            set_s(r, o->f_owner, user);
    }
    set_i(r, o->f_lastmod, sec);
    set_s(r, o->f_lastmodby, user);
    set_i(r, o->f_sysmod, sec);
}

/* ---------------------------------------------------------------- writes */
struct staged {
    int f;
    bool null;
    union sim_slot v;
    char *tmp; /* string not yet in the arena */
};

static bool conv_value(struct sim *sim, int obj, int f, json_object *jv,
                       struct staged *st, struct sim_err *e)
{
    const struct sim_field *fd = &sim_objects[obj].fields[f];
    enum sim_sclass sc = sim_sclass(fd->type);
    st->f = f;
    st->null = false;
    st->tmp = NULL;
    json_type jt = json_object_get_type(jv);
    if (jt == json_type_null) {
        st->null = true;
        if (sc == SIM_S_BOOL) {
            st->null = false;
            st->v.i = 0;
        }
        return true;
    }
    const char *str = jt == json_type_string ? json_object_get_string(jv) : NULL;
    switch (sc) {
    case SIM_S_STR: {
        const char *txt = json_object_get_string(jv);
        if (jt == json_type_object || jt == json_type_array)
            goto bad;
        if (!*txt) {
            st->null = true;
            return true;
        }
        if (fd->type == SIM_T_REFERENCE || fd->type == SIM_T_ID) {
            char id18[19];
            int tobj;
            if (!sim_id_to18(txt, id18)) {
                sim_err_set(e, 400, "MALFORMED_ID", fd->name,
                            "%s: id value of incorrect type: %s", fd->label, txt);
                return false;
            }
            struct sim_rec *t = sim_store_find(&sim->store, id18, &tobj, NULL);
            if (!t || sim_rec_deleted(&sim->store, tobj, t) ||
                (strcmp(sim_objects[tobj].name, fd->ref1) != 0 &&
                 (!fd->ref2 || strcmp(sim_objects[tobj].name, fd->ref2) != 0))) {
                sim_err_set(e, 400, "INVALID_CROSS_REFERENCE_KEY", fd->name,
                            "invalid cross reference id");
                return false;
            }
            st->v.s = t->id;
            return true;
        }
        if ((int)strlen(txt) > fd->length) {
            sim_err_set(e, 400, "STRING_TOO_LONG", fd->name,
                        "%s: data value too large: %.40s (max length=%d)",
                        fd->label, txt, fd->length);
            return false;
        }
        if (fd->type == SIM_T_EMAIL) {
            const char *at = strchr(txt, '@');
            if (!at || at == txt || !strchr(at, '.') || strchr(txt, ' ')) {
                sim_err_set(e, 400, "INVALID_EMAIL_ADDRESS", fd->name,
                            "%s: invalid email address: %s", fd->label, txt);
                return false;
            }
        }
        st->tmp = strdup(txt);
        if (!st->tmp)
            abort();
        return true;
    }
    case SIM_S_NUM:
    case SIM_S_INT: {
        double d;
        if (jt == json_type_int || jt == json_type_double) {
            d = json_object_get_double(jv);
        } else if (str && *str) {
            char *end;
            d = strtod(str, &end);
            if (*end)
                goto bad;
        } else {
            goto bad;
        }
        if (sc == SIM_S_INT)
            st->v.i = (int64_t)llround(d);
        else
            st->v.d = fd->scale >= 0 ? round(d * pow(10, fd->scale)) / pow(10, fd->scale) : d;
        return true;
    }
    case SIM_S_BOOL:
        if (jt == json_type_boolean)
            st->v.i = json_object_get_boolean(jv);
        else if (str && (sim_strieq(str, "true") || sim_strieq(str, "false")))
            st->v.i = sim_strieq(str, "true");
        else
            goto bad;
        return true;
    case SIM_S_DATE: {
        size_t used;
        if (!str || !sim_parse_date(str, strlen(str), &st->v.i, &used))
            goto bad;
        return true;
    }
    case SIM_S_DT: {
        size_t used, n = str ? strlen(str) : 0;
        if (!str)
            goto bad;
        if (!sim_parse_datetime(str, n, &st->v.i, &used) || used != n) {
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%sZ", str);
            if (!sim_parse_datetime(tmp, strlen(tmp), &st->v.i, &used) ||
                used != strlen(tmp))
                goto bad;
        }
        return true;
    }
    }
bad:
    sim_err_set(e, 400, "JSON_PARSER_ERROR", fd->name,
                "Cannot deserialize instance of %s from %s value %s or request may "
                "be missing a required field",
                sim_type_name(fd->type), json_type_to_name(jt),
                json_object_to_json_string_ext(jv, JSON_C_TO_STRING_PLAIN));
    return false;
}

static const char *final_str(const struct sim_rec *r, const struct staged *st,
                             int nst, int f)
{
    for (int i = 0; i < nst; i++)
        if (st[i].f == f)
            return st[i].null ? NULL : st[i].tmp ? st[i].tmp : st[i].v.s;
    return r ? get_s(r, f) : NULL;
}

static bool final_null(const struct sim_rec *r, const struct staged *st, int nst,
                       int f)
{
    for (int i = 0; i < nst; i++)
        if (st[i].f == f)
            return st[i].null;
    return r ? isnull(r, f) : true;
}

bool sim_store_write_locked(struct sim *sim, int obj, uint32_t *idx,
                            json_object *fields, enum sim_wmode mode,
                            const char *skip_field, struct sim_err *e)
{
    struct sim_store *s = &sim->store;
    const struct sim_object *o = &sim_objects[obj];
    bool insert = mode == SIM_W_INSERT || mode == SIM_W_DIRECT_INSERT;
    bool direct = mode == SIM_W_DIRECT_INSERT || mode == SIM_W_DIRECT_UPDATE;
    struct staged st[64];
    bool staged[64] = {0};
    int nst = 0;
    bool ok = false;
    struct sim_rec *r = NULL;
    pthread_once(&f_once, f_init);

    if (!json_object_is_type(fields, json_type_object)) {
        sim_err_set(e, 400, "JSON_PARSER_ERROR", NULL,
                    "The sobject data must be a JSON object");
        return false;
    }
    if (!insert) {
        r = sim_rec_at(s, obj, *idx);
        if (sim_rec_deleted(s, obj, r) && !direct) {
            sim_err_set(e, 404, "ENTITY_IS_DELETED", NULL, "entity is deleted");
            return false;
        }
    }
    json_object_object_foreach(fields, key, jv)
    {
        if (strcmp(key, "attributes") == 0 || (skip_field && sim_strieq(key, skip_field)))
            continue;
        int f = sim_field_find(o, key);
        if (f < 0) {
            sim_err_set(e, 400, "INVALID_FIELD", NULL,
                        "No such column '%s' on sobject of type %s", key, o->name);
            goto out;
        }
        const struct sim_field *fd = &o->fields[f];
        if (f == o->f_id) {
            if (direct)
                continue;
            sim_err_set(e, 400, "INVALID_FIELD", NULL,
                        "The Id field should not be specified in the sobject data.");
            goto out;
        }
        bool allowed;
        if (direct)
            allowed = !(fd->flags & SIM_F_CALC) && f > o->f_sysmod;
        else
            allowed = (fd->flags & (insert ? SIM_F_CREATE : SIM_F_UPDATE)) != 0;
        if (!allowed) {
            sim_err_set(e, 400, "INVALID_FIELD_FOR_INSERT_UPDATE", fd->name,
                        "Unable to %s fields: %s. Please check the security settings "
                        "of this field and verify that it is read/write for your "
                        "profile or permission set.",
                        insert ? "create" : "update", fd->name);
            goto out;
        }
        if (staged[f])
            continue;
        if (!conv_value(sim, obj, f, jv, &st[nst], e))
            goto out;
        staged[f] = true;
        nst++;
    }
    /* required fields */
    for (int f = 0; f < o->nfields; f++) {
        if (!(o->fields[f].flags & SIM_F_REQUIRED))
            continue;
        if ((insert && final_null(NULL, st, nst, f)) ||
            (!insert && staged[f] && final_null(r, st, nst, f))) {
            sim_err_set(e, 400, "REQUIRED_FIELD_MISSING", o->fields[f].name,
                        "Required fields are missing: [%s]", o->fields[f].name);
            goto out;
        }
    }
    /* unique fields */
    for (int i = 0; i < nst; i++) {
        const struct sim_field *fd = &o->fields[st[i].f];
        if (!(fd->flags & SIM_F_UNIQUE) || st[i].null)
            continue;
        uint32_t hit[2];
        size_t n = sim_store_lookup_locked(s, obj, st[i].f, st[i].tmp, hit, 2);
        for (size_t k = 0; k < n && k < 2; k++) {
            if (!insert && hit[k] == *idx)
                continue;
            sim_err_set(e, 400, "DUPLICATE_VALUE", fd->name,
                        "duplicate value found: %s duplicates value on record with "
                        "id: %s",
                        fd->name, sim_rec_at(s, obj, hit[k])->id);
            goto out;
        }
    }
    if (!direct) {
        /* the validation-rule fault */
        pthread_mutex_lock(&sim->mu);
        char vo[64], vf[64], vc[128];
        snprintf(vo, sizeof vo, "%s", sim->f.vr_object);
        snprintf(vf, sizeof vf, "%s", sim->f.vr_field);
        snprintf(vc, sizeof vc, "%s", sim->f.vr_contains);
        pthread_mutex_unlock(&sim->mu);
        if (vo[0] && vc[0] && sim_strieq(vo, o->name)) {
            int f = sim_field_find(o, vf);
            const char *val = f >= 0 ? final_str(r, st, nst, f) : NULL;
            if (val && sim_is_text(o->fields[f].type) && strstr(val, vc)) {
                sim_err_set(e, 400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", o->fields[f].name,
                            "%s must not contain \"%s\"", o->fields[f].label, vc);
                goto out;
            }
        }
        if (sim_fault_lock_row(sim)) {
            sim_err_set(e, 400, "UNABLE_TO_LOCK_ROW", NULL,
                        "unable to obtain exclusive access to this record or 1 "
                        "records: %s",
                        r ? r->id : "");
            goto out;
        }
    }
    /* apply */
    int64_t now = sim_now(sim);
    uint32_t at;
    if (insert) {
        at = rec_alloc(s, obj);
        undo_save(s, obj, at, true);
    } else {
        at = *idx;
        undo_save(s, obj, at, false);
        rec_index(s, obj, at, -1);
    }
    r = sim_rec_at(s, obj, at);
    for (int i = 0; i < nst; i++) {
        if (st[i].null) {
            setnull(r, st[i].f);
        } else if (st[i].tmp) {
            set_s(r, st[i].f, sim_arena_strdup(s, st[i].tmp, strlen(st[i].tmp)));
        } else {
            r->v[st[i].f] = st[i].v;
            clrnull(r, st[i].f);
        }
    }
    if (insert) {
        if (obj == SIM_TASK) {
            if (isnull(r, F.t_status))
                set_s(r, F.t_status, "Not Started");
            if (isnull(r, F.t_prio))
                set_s(r, F.t_prio, "Normal");
        }
        if (obj == SIM_USER && isnull(r, F.u_active))
            set_i(r, F.u_active, 1);
    }
    stamp(s, obj, r, now, sim->user_id, insert);
    derive(s, obj, r, staged, insert, now);
    rec_index(s, obj, at, +1);
    *idx = at;
    ok = true;
out:
    for (int i = 0; i < nst; i++)
        free(st[i].tmp);
    return ok;
}

bool sim_store_delete_locked(struct sim *sim, int obj, uint32_t idx, bool hard,
                             struct sim_err *e)
{
    struct sim_store *s = &sim->store;
    struct sim_rec *r = sim_rec_at(s, obj, idx);
    pthread_once(&f_once, f_init);
    if (hard) {
        undo_save(s, obj, idx, false);
        rec_index(s, obj, idx, -1);
        r->purged = 1;
        return true;
    }
    if (sim_rec_deleted(s, obj, r)) {
        sim_err_set(e, 404, "ENTITY_IS_DELETED", NULL, "entity is deleted");
        return false;
    }
    undo_save(s, obj, idx, false);
    rec_index(s, obj, idx, -1);
    set_i(r, sim_objects[obj].f_isdeleted, 1);
    stamp(s, obj, r, sim_now(sim), sim->user_id, false);
    rec_index(s, obj, idx, +1);
    return true;
}

/* ---------------------------------------------------------------- init */
int sim_store_init(struct sim_store *s)
{
    pthread_once(&f_once, f_init);
    memset(s, 0, sizeof *s);
    if (pthread_rwlock_init(&s->lock, NULL) != 0)
        return -1;
    for (int o = 0; o < SIM_NOBJ; o++) {
        struct sim_table *t = &s->t[o];
        t->obj = o;
        t->stride = sizeof(struct sim_rec) +
                    (size_t)sim_objects[o].nfields * sizeof(union sim_slot);
        t->stride = (t->stride + 7) & ~(size_t)7;
        for (int f = 0; f < sim_objects[o].nfields; f++) {
            if (!(sim_objects[o].fields[f].flags & (SIM_F_EXTID | SIM_F_UNIQUE)))
                continue;
            t->hidx[f] = calloc(1, sizeof *t->hidx[f]);
            if (!t->hidx[f])
                abort();
            t->hidx[f]->obj = o;
            t->hidx[f]->f = f;
        }
    }
    sim_id_make("00D", 1, s->org_id);
    return 0;
}

void sim_store_cleanup(struct sim_store *s)
{
    for (int o = 0; o < SIM_NOBJ; o++) {
        struct sim_table *t = &s->t[o];
        for (size_t i = 0; i < t->nslabs; i++)
            free(t->slabs[i]);
        free(t->slabs);
        for (int f = 0; f < 64; f++) {
            if (t->hidx[f])
                free(t->hidx[f]->slot);
            free(t->hidx[f]);
        }
    }
    while (s->arena) {
        struct sim_arena_chunk *n = s->arena->next;
        free(s->arena);
        s->arena = n;
    }
    pthread_rwlock_destroy(&s->lock);
}

/* ---------------------------------------------------------------- seeding */
static const char *const adjs[] = {
    "Northwind", "Blue Ridge", "Summit", "Pioneer", "Silver Lake", "Redwood",
    "Granite", "Harbor", "Evergreen", "Lakeside", "Atlas", "Horizon", "Keystone",
    "Cedar", "Meridian", "Beacon", "Riverbend", "Ironwood", "Sterling", "Crescent",
    "Oakmont", "Bright Path", "Falcon", "Golden Gate", "Maple Leaf", "Westfield",
    "Sunrise", "Polaris", "Everest", "Coastal"};
static const char *const nouns[] = {
    "Analytics", "Logistics", "Health", "Energy", "Foods", "Capital", "Robotics",
    "Pharma", "Media", "Software", "Textiles", "Motors", "Foundation", "Labs",
    "Consulting", "Bank", "Insurance", "Telecom", "Biotech", "Outfitters",
    "Construction", "Learning", "Airlines", "Hotels", "Studios"};
static const char *const suffixes[] = {"Inc.", "LLC", "Ltd", "Group", "Corp.",
                                       "GmbH", "S.A.", "Partners", "Co.", "Holdings"};
static const char *const firsts[] = {
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
    "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph",
    "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Wei", "Aisha", "Ivan",
    "Sofia", "Kenji", "Fatima", "Lukas", "Priya", "Mateo", "Chloe", "Omar", "Nora"};
static const char *const lasts[] = {
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson",
    "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez",
    "Thompson", "White", "Harris", "Sanchez", "Clark", "Nguyen", "Müller", "Kowalski",
    "O'Brien", "Tanaka", "Okafor", "Novak", "Rossi", "Dubois"};
static const char *const cities[] = {"San Francisco", "New York", "Chicago",
                                     "Austin", "Seattle", "Boston", "Denver",
                                     "Atlanta", "London", "Paris", "Berlin",
                                     "Toronto", "Sydney", "Zurich", "Madrid"};
static const char *const states[] = {"CA", "NY", "IL", "TX", "WA", "MA", "CO", "GA",
                                     "England", "Île-de-France", "Berlin", "ON",
                                     "NSW", "ZH", "Madrid"};
static const char *const countries[] = {
    "USA", "USA", "USA", "USA", "USA", "USA", "USA", "USA", "United Kingdom",
    "France", "Germany", "Canada", "Australia", "Switzerland", "Spain"};
static const char *const streets[] = {"Market St", "Main St", "Oak Ave", "Pine Rd",
                                      "Elm St", "Broadway", "High St", "Park Ave",
                                      "Lake Shore Dr", "Mission St"};
static const char *const titles[] = {"CEO", "CFO", "VP Sales", "Director of IT",
                                     "Procurement Manager", "Account Manager",
                                     "Head of Research", "Program Officer",
                                     "Operations Lead", "Data Scientist"};
static const char *const depts[] = {"Executive", "Finance", "Sales", "IT",
                                    "Procurement", "Research", "Operations"};
static const char *const products[] = {"Platform License", "Renewal", "Expansion",
                                       "Pilot", "Services", "Enterprise Upgrade",
                                       "Research Grant", "Support Plan"};
static const char *const subjects[] = {"Call", "Send Quote", "Follow up",
                                       "Email", "Send Letter", "Review contract",
                                       "Prepare proposal", "Schedule demo"};
static const char *const ev_subjects[] = {"Meeting", "Quarterly review", "Demo",
                                          "Lunch", "Kick-off", "Site visit"};
static const char *const int_names[] = {"Quarterly Check-In", "Portfolio Review",
                                        "Onboarding Call", "Annual Planning",
                                        "Conference Meetup", "Intro Meeting"};
static const char *const acct_types_s[] = {"Prospect", "Customer - Direct",
                                           "Customer - Channel",
                                           "Channel Partner / Reseller", "Other"};
static const char *const inds[] = {
    "Banking", "Biotechnology", "Consulting", "Education", "Energy", "Finance",
    "Government", "Healthcare", "Insurance", "Manufacturing", "Media",
    "Not For Profit", "Retail", "Technology", "Telecommunications"};
static const char *const srcs[] = {"Web", "Phone Inquiry", "Partner Referral",
                                   "Purchased List", "Other"};
static const char *const tiers_s[] = {"Gold", "Silver", "Bronze"};
static const char *const itypes_s[] = {"Conference", "Email", "In Person",
                                       "Phone Call"};
static const char *const tst_s[] = {"Not Started", "In Progress", "Completed",
                                    "Waiting on someone else", "Deferred"};
static const char *const prio_s[] = {"High", "Normal", "Low"};
static const char *const opp_types_seed[] = {"Existing Customer - Upgrade",
                                            "New Customer",
                                            "Existing Customer - Replacement"};
static const char *const sectors_s[] = {"Public", "Private", "Nonprofit"};
static const char *const att_resp_s[] = {"Accepted", "Accepted", "Accepted",
                                         "Declined", "Awaiting Response"};

#define PICKR(rng, a) ((a)[sim_rng(rng) % (sizeof(a) / sizeof((a)[0]))])

static const char *dupf(struct sim_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *dupf(struct sim_store *s, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof tmp)
        n = sizeof tmp - 1;
    return sim_arena_strdup(s, tmp, (size_t)n);
}

static void lower_dash(const char *in, char *out, size_t n)
{
    size_t o = 0;
    for (; *in && o + 1 < n; in++) {
        unsigned char c = (unsigned char)*in;
        if (isalnum(c))
            out[o++] = (char)tolower(c);
        else if (c == ' ' && o && out[o - 1] != '-')
            out[o++] = '-';
    }
    out[o] = '\0';
}

/* a record with system fields from the seed stream: modified within the last
 * 30 days, created up to a year before that */
static uint32_t seed_rec(struct sim *sim, int obj, uint64_t *rng, int64_t now,
                         const char *owner)
{
    struct sim_store *s = &sim->store;
    const struct sim_object *o = &sim_objects[obj];
    uint32_t idx = rec_alloc(s, obj);
    struct sim_rec *r = sim_rec_at(s, obj, idx);
    int64_t mod = now - (int64_t)(sim_rng(rng) % (30ULL * 86400)) * 1000;
    int64_t cre = mod - (int64_t)(sim_rng(rng) % (365ULL * 86400)) * 1000;
    set_i(r, o->f_isdeleted, 0);
    set_i(r, o->f_created, cre);
    set_i(r, o->f_lastmod, mod);
    set_i(r, o->f_sysmod, mod);
    set_s(r, o->f_createdby, sim->user_id);
    set_s(r, o->f_lastmodby, owner);
    if (o->f_owner >= 0)
        set_s(r, o->f_owner, owner);
    return idx;
}

void sim_store_seed(struct sim *sim)
{
    struct sim_store *s = &sim->store;
    const struct sim_config *c = &sim->cfg;
    uint64_t rng = c->seed;
    int64_t now = sim_now(sim);
    now -= now % 1000;
    int64_t today = now / 86400000;
    pthread_once(&f_once, f_init);

    /* users: the auto-approved test user first, then a few owners */
    static const char *const unames[][2] = {{"Demo", "User"},
                                            {"Alex", "Rivera"},
                                            {"Sam", "Chen"},
                                            {"Jordan", "Patel"},
                                            {"Taylor", "Kim"}};
    const struct sim_object *uo = &sim_objects[SIM_USER];
    int fu_user = sim_field_find(uo, "Username"), fu_email = sim_field_find(uo, "Email"),
        fu_alias = sim_field_find(uo, "Alias");
    const char *owners[5];
    for (int i = 0; i < 5; i++) {
        uint32_t idx = rec_alloc(s, SIM_USER);
        struct sim_rec *r = sim_rec_at(s, SIM_USER, idx);
        if (i == 0)
            snprintf(sim->user_id, sizeof sim->user_id, "%s", r->id);
        set_i(r, uo->f_isdeleted, 0);
        set_i(r, uo->f_created, now - 400LL * 86400000);
        set_i(r, uo->f_lastmod, now - 400LL * 86400000);
        set_i(r, uo->f_sysmod, now - 400LL * 86400000);
        set_s(r, uo->f_createdby, sim->user_id);
        set_s(r, uo->f_lastmodby, sim->user_id);
        set_s(r, F.u_first, unames[i][0]);
        set_s(r, F.u_last, unames[i][1]);
        derive_name(s, r, F.u_first, F.u_last, F.u_name);
        set_s(r, fu_user,
              i == 0 ? sim_arena_strdup(s, c->user, strlen(c->user))
                     : dupf(s, "%s.%s@example.com", unames[i][0], unames[i][1]));
        set_s(r, fu_email, get_s(r, fu_user));
        set_s(r, fu_alias, dupf(s, "%.1s%.4s", unames[i][0], unames[i][1]));
        set_i(r, F.u_active, 1);
        rec_index(s, SIM_USER, idx, +1);
        owners[i] = r->id;
    }

    const struct sim_object *ao = &sim_objects[SIM_ACCOUNT];
    int a_type = sim_field_find(ao, "Type"), a_ind = sim_field_find(ao, "Industry"),
        a_phone = sim_field_find(ao, "Phone"), a_web = sim_field_find(ao, "Website"),
        a_bst = sim_field_find(ao, "BillingStreet"),
        a_bci = sim_field_find(ao, "BillingCity"),
        a_bsta = sim_field_find(ao, "BillingState"),
        a_bzip = sim_field_find(ao, "BillingPostalCode"),
        a_bco = sim_field_find(ao, "BillingCountry"),
        a_rev = sim_field_find(ao, "AnnualRevenue"),
        a_emp = sim_field_find(ao, "NumberOfEmployees"),
        a_src = sim_field_find(ao, "AccountSource"),
        a_tier = sim_field_find(ao, "Tier__c");
    for (long i = 0; i < c->seed_accounts; i++) {
        const char *own = owners[sim_rng(&rng) % 5];
        uint32_t idx = seed_rec(sim, SIM_ACCOUNT, &rng, now, own);
        struct sim_rec *r = sim_rec_at(s, SIM_ACCOUNT, idx);
        const char *adj = PICKR(&rng, adjs), *noun = PICKR(&rng, nouns);
        set_s(r, F.a_name, dupf(s, "%s %s %s", adj, noun, PICKR(&rng, suffixes)));
        char slug[96];
        lower_dash(adj, slug, sizeof slug);
        char nslug[64];
        lower_dash(noun, nslug, sizeof nslug);
        set_s(r, a_web, dupf(s, "https://www.%s-%s%ld.example.com", slug, nslug, i + 1));
        set_s(r, a_type, PICKR(&rng, acct_types_s));
        set_s(r, a_ind, PICKR(&rng, inds));
        set_s(r, a_phone, dupf(s, "(555) %03u-%04u", (unsigned)(sim_rng(&rng) % 1000),
                               (unsigned)(sim_rng(&rng) % 10000)));
        int ci = (int)(sim_rng(&rng) % (sizeof cities / sizeof cities[0]));
        set_s(r, a_bst, dupf(s, "%u %s", (unsigned)(1 + sim_rng(&rng) % 9999),
                             PICKR(&rng, streets)));
        set_s(r, a_bci, cities[ci]);
        set_s(r, a_bsta, states[ci]);
        set_s(r, a_bco, countries[ci]);
        set_s(r, a_bzip, dupf(s, "%05u", (unsigned)(sim_rng(&rng) % 100000)));
        set_d(r, a_rev, (double)((sim_rng(&rng) % 5000) + 1) * 100000.0);
        set_i(r, a_emp, (int64_t)(sim_rng(&rng) % 20000) + 5);
        set_s(r, a_src, PICKR(&rng, srcs));
        set_s(r, a_tier, PICKR(&rng, tiers_s));
        rec_index(s, SIM_ACCOUNT, idx, +1);
    }
    uint32_t nacc = s->t[SIM_ACCOUNT].n;

    const struct sim_object *co = &sim_objects[SIM_CONTACT];
    int c_title = sim_field_find(co, "Title"), c_dept = sim_field_find(co, "Department"),
        c_phone = sim_field_find(co, "Phone"), c_city = sim_field_find(co, "MailingCity"),
        c_country = sim_field_find(co, "MailingCountry"),
        c_src = sim_field_find(co, "LeadSource"), c_li = sim_field_find(co, "LinkedIn__c");
    for (long i = 0; i < c->seed_contacts; i++) {
        const char *own = owners[sim_rng(&rng) % 5];
        uint32_t idx = seed_rec(sim, SIM_CONTACT, &rng, now, own);
        struct sim_rec *r = sim_rec_at(s, SIM_CONTACT, idx);
        if (nacc)
            set_s(r, F.c_acct, sim_rec_at(s, SIM_ACCOUNT, (uint32_t)(i % nacc))->id);
        const char *fn = PICKR(&rng, firsts), *ln = PICKR(&rng, lasts);
        set_s(r, F.c_first, fn);
        set_s(r, F.c_last, ln);
        derive_name(s, r, F.c_first, F.c_last, F.c_name);
        char lf[64], ll[64];
        lower_dash(fn, lf, sizeof lf);
        lower_dash(ln, ll, sizeof ll);
        set_s(r, F.c_email, dupf(s, "%s.%s.%ld@example.org", lf, ll, i + 1));
        set_s(r, c_title, PICKR(&rng, titles));
        set_s(r, c_dept, PICKR(&rng, depts));
        set_s(r, c_phone, dupf(s, "(555) %03u-%04u", (unsigned)(sim_rng(&rng) % 1000),
                               (unsigned)(sim_rng(&rng) % 10000)));
        int ci = (int)(sim_rng(&rng) % (sizeof cities / sizeof cities[0]));
        set_s(r, c_city, cities[ci]);
        set_s(r, c_country, countries[ci]);
        set_s(r, c_src, PICKR(&rng, srcs));
        if (sim_rng(&rng) % 3 == 0)
            set_s(r, c_li, dupf(s, "https://www.linkedin.com/in/%s-%s-%ld", lf, ll, i + 1));
        rec_index(s, SIM_CONTACT, idx, +1);
    }
    uint32_t ncon = s->t[SIM_CONTACT].n;

    const struct sim_object *oo = &sim_objects[SIM_OPPORTUNITY];
    int o_type = sim_field_find(oo, "Type"), o_src = sim_field_find(oo, "LeadSource"),
        o_sector = sim_field_find(oo, "Sector__c");
    for (long i = 0; i < c->seed_opportunities; i++) {
        const char *own = owners[sim_rng(&rng) % 5];
        uint32_t idx = seed_rec(sim, SIM_OPPORTUNITY, &rng, now, own);
        struct sim_rec *r = sim_rec_at(s, SIM_OPPORTUNITY, idx);
        const char *an = "Prospect";
        if (nacc) {
            struct sim_rec *a = sim_rec_at(s, SIM_ACCOUNT, (uint32_t)(i % nacc));
            set_s(r, F.o_acct, a->id);
            an = get_s(a, F.a_name);
        }
        set_s(r, F.o_name, dupf(s, "%s - %s", an, PICKR(&rng, products)));
        set_d(r, F.o_amount, (double)((sim_rng(&rng) % 5000) + 10) * 100.0);
        set_i(r, F.o_close, today - 180 + (int64_t)(sim_rng(&rng) % 360));
        set_s(r, F.o_stage, stage_info[sim_rng(&rng) % 10].stage);
        set_s(r, o_type, PICKR(&rng, opp_types_seed));
        set_s(r, o_src, PICKR(&rng, srcs));
        set_s(r, o_sector, PICKR(&rng, sectors_s));
        derive(s, SIM_OPPORTUNITY, r, NULL, true, now);
        rec_index(s, SIM_OPPORTUNITY, idx, +1);
    }

    uint32_t nopp = s->t[SIM_OPPORTUNITY].n;
    uint64_t frng = c->seed * 0xd1b54a32d192ed03ULL + 0x4fa7e1d5ULL;
    const struct sim_object *io = &sim_objects[SIM_INTERACTION];
    int i_name = sim_field_find(io, "Name"), i_start = sim_field_find(io, "StartTime"),
        i_end = sim_field_find(io, "EndTime"), i_type = sim_field_find(io, "InteractionType");
    for (long i = 0; i < c->seed_interactions; i++) {
        const char *own = owners[sim_rng(&rng) % 5];
        uint32_t idx = seed_rec(sim, SIM_INTERACTION, &rng, now, own);
        struct sim_rec *r = sim_rec_at(s, SIM_INTERACTION, idx);
        if (nacc)
            set_s(r, F.i_acct, sim_rec_at(s, SIM_ACCOUNT, (uint32_t)(i % nacc))->id);
        set_s(r, i_name, PICKR(&rng, int_names));
        int64_t st = r->v[io->f_sysmod].i - (int64_t)(sim_rng(&rng) % 86400) * 1000;
        set_i(r, i_start, st);
        set_i(r, i_end, st + (int64_t)(30 + 30 * (sim_rng(&rng) % 3)) * 60000);
        set_s(r, i_type, PICKR(&rng, itypes_s));
        /* about half relate to one of their account's opportunities (opp j
         * belongs to account j % nacc); a separate stream keeps the rest of
         * the seeded data what it was before this field existed */
        uint64_t pick = sim_rng(&frng);
        uint32_t a = nacc ? (uint32_t)(i % nacc) : 0;
        if (nacc && a < nopp && (pick & 1)) {
            uint32_t cnt = (nopp - 1 - a) / nacc + 1;
            uint32_t j = a + (uint32_t)((pick >> 1) % cnt) * nacc;
            set_s(r, F.i_rel, sim_rec_at(s, SIM_OPPORTUNITY, j)->id);
        }
        rec_index(s, SIM_INTERACTION, idx, +1);
    }
    uint32_t ninter = s->t[SIM_INTERACTION].n;

    const struct sim_object *to = &sim_objects[SIM_TASK];
    int t_subj = sim_field_find(to, "Subject"), t_date = sim_field_find(to, "ActivityDate");
    for (long i = 0; i < c->seed_tasks; i++) {
        const char *own = owners[sim_rng(&rng) % 5];
        uint32_t idx = seed_rec(sim, SIM_TASK, &rng, now, own);
        struct sim_rec *r = sim_rec_at(s, SIM_TASK, idx);
        if (nacc)
            set_s(r, F.t_what, sim_rec_at(s, SIM_ACCOUNT, (uint32_t)(i % nacc))->id);
        if (ncon && nacc && (uint32_t)(i % nacc) < ncon)
            set_s(r, F.t_who, sim_rec_at(s, SIM_CONTACT, (uint32_t)(i % nacc))->id);
        set_s(r, t_subj, PICKR(&rng, subjects));
        set_i(r, t_date, today - 30 + (int64_t)(sim_rng(&rng) % 60));
        set_s(r, F.t_status, PICKR(&rng, tst_s));
        set_s(r, F.t_prio, PICKR(&rng, prio_s));
        derive(s, SIM_TASK, r, NULL, true, r->v[to->f_sysmod].i);
        rec_index(s, SIM_TASK, idx, +1);
    }

    const struct sim_object *eo = &sim_objects[SIM_EVENT];
    int e_subj = sim_field_find(eo, "Subject"), e_loc = sim_field_find(eo, "Location");
    for (long i = 0; i < c->seed_events; i++) {
        const char *own = owners[sim_rng(&rng) % 5];
        uint32_t idx = seed_rec(sim, SIM_EVENT, &rng, now, own);
        struct sim_rec *r = sim_rec_at(s, SIM_EVENT, idx);
        if (nacc)
            set_s(r, F.e_what, sim_rec_at(s, SIM_ACCOUNT, (uint32_t)(i % nacc))->id);
        if (ncon && nacc && (uint32_t)(i % nacc) < ncon)
            set_s(r, F.e_who, sim_rec_at(s, SIM_CONTACT, (uint32_t)(i % nacc))->id);
        set_s(r, e_subj, PICKR(&rng, ev_subjects));
        set_s(r, e_loc, PICKR(&rng, cities));
        int64_t st = (today - 30 + (int64_t)(sim_rng(&rng) % 60)) * 86400000LL +
                     (8 + (int64_t)(sim_rng(&rng) % 9)) * 3600000LL;
        set_i(r, F.e_start, st);
        set_i(r, F.e_dur, 30 * (1 + (int64_t)(sim_rng(&rng) % 4)));
        derive(s, SIM_EVENT, r, NULL, true, now);
        rec_index(s, SIM_EVENT, idx, +1);
    }

    /* attendees: attendee k joins interaction k % ninter; its round
     * k / ninter picks that account's next contact (contact j belongs to
     * account j % nacc), and once the account's contacts are used up, an
     * internal user (the first of them the organizer) */
    const struct sim_object *ao2 = &sim_objects[SIM_INTERACTION_ATTENDEE];
    int ia_name = sim_field_find(ao2, "Name"), ia_con = sim_field_find(ao2, "ContactId"),
        ia_user = sim_field_find(ao2, "UserId"), ia_mail = sim_field_find(ao2, "EmailAddress"),
        ia_type = sim_field_find(ao2, "AttendeeType"),
        ia_resp = sim_field_find(ao2, "AttendeeResponse");
    for (long k = 0; ninter && k < c->seed_attendees; k++) {
        uint32_t ii = (uint32_t)(k % ninter);
        uint32_t rd = (uint32_t)(k / ninter);
        const struct sim_rec *in = sim_rec_at(s, SIM_INTERACTION, ii);
        const char *own = get_s(in, io->f_owner);
        uint32_t idx = seed_rec(sim, SIM_INTERACTION_ATTENDEE, &rng, now, own);
        struct sim_rec *r = sim_rec_at(s, SIM_INTERACTION_ATTENDEE, idx);
        set_s(r, F.ia_inter, in->id);
        uint32_t a = nacc ? ii % nacc : 0;
        uint32_t ca = nacc && a < ncon ? (ncon - 1 - a) / nacc + 1 : 0;
        if (isnull(in, F.i_acct))
            ca = 0;
        if (rd < ca) {
            const struct sim_rec *ct = sim_rec_at(s, SIM_CONTACT, a + rd * nacc);
            set_s(r, ia_con, ct->id);
            set_s(r, ia_name, get_s(ct, F.c_name));
            set_s(r, ia_mail, get_s(ct, F.c_email));
            set_s(r, ia_type, "External");
            set_s(r, ia_resp, PICKR(&rng, att_resp_s));
            set_i(r, F.ia_org, 0);
        } else {
            const struct sim_rec *u = sim_rec_at(s, SIM_USER, (rd - ca) % 5);
            set_s(r, ia_user, u->id);
            set_s(r, ia_name, get_s(u, F.u_name));
            set_s(r, ia_mail, get_s(u, fu_email));
            set_s(r, ia_type, "Internal");
            set_s(r, ia_resp, "Accepted");
            set_i(r, F.ia_org, rd == ca);
        }
        rec_index(s, SIM_INTERACTION_ATTENDEE, idx, +1);
    }
}
