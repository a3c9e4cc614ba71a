/*
 * sfbridge-write internals: one record.write message becomes a list of
 * operations (struct wop), planned into Salesforce calls (one composite for a
 * bundle, sObject Collections of 200 for large sets), with write_intents
 * committed before each call and the outcome, local rows and audit rows
 * committed after it.
 *
 * Single-threaded; everything here belongs to the handler call.
 */
#ifndef SFBRIDGE_WRITE_H
#define SFBRIDGE_WRITE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "mapping.h"

struct pg;
struct deps;
struct job;
struct conn_session;

enum wact { ACT_CREATE, ACT_UPDATE, ACT_UPSERT, ACT_DELETE };
/* how an operation is sent */
enum wkind {
    K_NONE,  /* not sent (refused / invalid) */
    K_EXTID, /* upsert on the org's external-id field valued from the platform id */
    K_BYID,  /* update of a known Salesforce id */
    K_CREATE /* plain create (org without external-id field) */
};

struct wlink {
    int op;          /* index of the linked operation in this message, -1 for an id */
    char sf[19];     /* Salesforce id when known */
    char local[40];  /* local row id when known */
};

struct wop {
    int idx;
    const char *ref, *object; /* borrowed from the message */
    const char *action;
    enum wact act;
    const struct object_map *om;
    const char *table;
    struct json_object *fields; /* the platform fields (borrowed from the message) */
    struct json_object *match;  /* the upsert's match keys (borrowed from the message) or NULL */
    struct json_object *body;   /* exported Salesforce fields without links (owned) */
    enum wkind kind;
    char platform_id[40];
    char local_id[40]; /* an existing local row */
    char sf_id[19];
    bool has_company, has_deal;
    struct wlink company, deal;
    struct wlink *contacts;
    int ncontacts;
    const char *f_company, *f_deal; /* Salesforce fields the links go to (borrowed from the mapping) */
    int level;
    /* state */
    bool prior_attempt; /* an earlier attempt may have reached Salesforce */
    bool matched_remote; /* a create turned into an update of the record found by its match keys */
    bool done;          /* has a final outcome */
    const char *outcome; /* created / updated / failed / refused */
    char err_code[64];
    char err_msg[1024];
    struct json_object *err_fields; /* owned array or NULL */
    char modstamp[40];              /* SystemModstamp read back, "" when unknown */
    bool in_call;                   /* part of the call being made */
    bool recorded;                  /* outcome committed (intent, local row, audit) */
    bool from_intent;               /* outcome restored from an earlier run: not audited again */
};

struct wmsg {
    struct json_object *msg; /* borrowed */
    const char *request_id, *org_id, *connection_id, *actor, *source;
    bool all_or_none;
    struct mapping_set map;
    bool map_loaded;
    const char *ext_field; /* NULL when the org has none */
    struct wop *ops;
    int nops;
    long long api_calls;
};

/* plan.c */
bool write_plan(struct pg *pg, struct wmsg *m, struct err *e);
void write_msg_cleanup(struct wmsg *m);
void wop_fail(struct wop *o, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool write_is_sfid(const char *s);

/* sfid.c: a 15- or 18-character Salesforce id -> its 18-character case-safe
 * form in out (a 15-character id gets the checksum suffix; an 18-character one
 * gets the case of its first 15 restored from the suffix, the suffix upper
 * case). false when `in` is not such an id (out undefined). */
bool write_sfid18(const char *in, char out[19]);

/* send.c: one call for the ops with in_call set; fills their outcomes. Returns
 * false with e only for errors of the call as a whole. */
bool write_send_composite(struct conn_session *s, struct wmsg *m, struct err *e);
bool write_send_collection(struct conn_session *s, struct wmsg *m, const char *sf_object, enum wkind kind,
                           struct err *e);

/* match.c: orgs without an external-id field. Before the creates (kind
 * K_CREATE) are sent, look each up in Salesforce by its match keys (the op's
 * `match`, else the mapping's match-key fields it sets); a found record turns
 * the op into an update of it (K_BYID, matched_remote). A create an earlier
 * attempt already sent (prior_attempt) with no match key fails with
 * OUTCOME_UNKNOWN instead of being sent again. Per-op lookup failures fail
 * the op; returns false with e only for retriable errors and
 * ERR_LIMIT_EXCEEDED. write_match_queries: an upper bound of the queries
 * (for the budget check). */
int write_match_queries(const struct wmsg *m);
bool write_match_remote(struct conn_session *s, struct wmsg *m, struct err *e);

/* store.c */
bool write_intents_load(struct pg *pg, struct wmsg *m, struct err *e);
bool write_intents_insert(struct pg *pg, struct wmsg *m, struct err *e);
bool write_intents_mark_sent(struct pg *pg, struct wmsg *m, struct err *e);
/* intents outcome + local rows + audit rows of the ops finished in this call (in_call or just failed) */
bool write_record_outcomes(struct pg *pg, struct wmsg *m, bool (*selected)(const struct wop *), struct err *e);
struct json_object *write_event(const struct job *job, struct wmsg *m);

#endif
