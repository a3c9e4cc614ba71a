/*
 * sfbridge-write: consumes record.write, produces record.written.
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
    return err_set(e, ERR_NOT_IMPLEMENTED, false, "record.write handling is not implemented yet");
}

static const struct worker_def def = {
    .name = "sfbridge-write",
    .input_topic = "record.write",
    .output_topic = "record.written",
    .gate_org = true,
    .gate_connection = true,
    .handle = handle,
};

int main(int argc, char **argv) { return worker_run(&def, argc, argv); }
