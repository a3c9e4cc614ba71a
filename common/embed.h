/*
 * embed: files compiled into libsfbridge at build time (tests/rig/embed).
 * sfbridge_migrations: migrations/NNNN_name.sql in order.
 * sfbridge_schemas: schemas/<topic>.schema.json.
 * Arrays end with an entry whose name is NULL. All data is static, read-only.
 */
#ifndef SFBRIDGE_EMBED_H
#define SFBRIDGE_EMBED_H

#include <stddef.h>

struct embedded_file {
    const char *name; /* basename, e.g. "0001_init.sql" */
    const char *text; /* NUL-terminated contents */
    size_t len;
};

extern const struct embedded_file sfbridge_migrations[];
extern const struct embedded_file sfbridge_schemas[];

#endif
