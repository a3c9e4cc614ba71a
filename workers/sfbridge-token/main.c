/*
 * sfbridge-token: consumes token.refresh, produces token.refreshed.
 * Placeholder handler until its issue lands: the loop, DLQ, inbox and offset
 * handling are real; every valid job is answered with a failed completion
 * NOT_IMPLEMENTED.
 */
#include "worker.h"

static bool handle(struct job *job, struct deps *d, struct json_object **event, struct err *e)
{
    (void)job;
    (void)d;
    (void)event;
    return err_set(e, ERR_NOT_IMPLEMENTED, false, "token.refresh handling is not implemented yet");
}

static const struct worker_def def = {
    .name = "sfbridge-token",
    .input_topic = "token.refresh",
    .output_topic = "token.refreshed",
    .gate_org = true,
    .gate_connection = false,
    .handle = handle,
};

int main(int argc, char **argv) { return worker_run(&def, argc, argv); }
