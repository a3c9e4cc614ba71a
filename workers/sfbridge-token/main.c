/*
 * sfbridge-token: consumes token.refresh, produces token.refreshed (and
 * connection.status on every change of a connection's state).
 *
 * The loop gates the org itself (INTEGRATION_DISABLED before anything reaches
 * Salesforce); a code exchange has no connection yet, so the connection gate
 * runs inside the handler for grant refresh_token only.
 */
#include "token.h"

static const struct worker_def def = {
    .name = "sfbridge-token",
    .input_topic = "token.refresh",
    .output_topic = "token.refreshed",
    .gate_org = true,
    .gate_connection = false,
    .handle = token_handle,
    .init = token_init,
    .cleanup = token_cleanup,
    .failure_event = token_failure_event,
};

int main(int argc, char **argv) { return worker_run(&def, argc, argv); }
