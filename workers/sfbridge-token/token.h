/*
 * sfbridge-token: the token.refresh handler (code exchange and refresh).
 * One thread; the handler's state (its Salesforce client) lives in deps->ctx.
 */
#ifndef SFBRIDGE_TOKEN_H
#define SFBRIDGE_TOKEN_H

#include "worker.h"

/* worker_def hooks (see worker.h). */
bool token_init(struct deps *d, struct err *e);
void token_cleanup(struct deps *d);
bool token_handle(struct job *job, struct deps *d, struct json_object **event, struct err *e);
/* token.refreshed for a refused / failed request: status failed with error,
 * or expired / disabled when the connection is known to be. */
struct json_object *token_failure_event(const struct job *job, const struct err *e);

#endif
