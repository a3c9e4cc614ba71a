/*
 * msg: a run-time interpreter for the JSON Schema subset used by schemas/
 * (the contract is in msg.h).
 *
 * msg_init() parses each embedded schema with json-c and compiles it into a
 * tree of `struct snode` (one per schema object), with regexes compiled once
 * and $refs resolved to the node of their $defs entry. The schema documents
 * stay loaded: nodes borrow their strings and enum/const values from them.
 * Validation walks the tree with a context on the caller's stack (path of the
 * current instance location, first error), so it is thread-safe after init.
 *
 * Globals: the table of compiled schemas and a C locale object, written only
 * by msg_init*() / msg_cleanup() and read-only in between.
 */
#include "msg.h"

#include <json-c/json_object_iterator.h>
#include <locale.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define SCHEMA_SUFFIX ".schema.json"
#define SCHEMA_DIALECT "https://json-schema.org/draft/2020-12/schema"
#define MAX_PATH_DEPTH 128 /* instance nesting we name in errors */
#define MAX_EVAL_DEPTH 512 /* schema recursion ($ref chains included) */
#define PATH_SHOWN 140     /* longest path put in an error message */

enum {
    TY_NULL = 1u << 0,
    TY_BOOLEAN = 1u << 1,
    TY_OBJECT = 1u << 2,
    TY_ARRAY = 1u << 3,
    TY_NUMBER = 1u << 4,
    TY_INTEGER = 1u << 5,
    TY_STRING = 1u << 6,
};

enum fmt { FMT_NONE = 0, FMT_UUID, FMT_DATETIME };
enum kind { NODE_SCHEMA = 0, NODE_TRUE, NODE_FALSE };

struct snode;

struct sprop {
    const char *name; /* borrowed from the schema document */
    struct snode *schema;
};

struct snode {
    enum kind kind;
    unsigned types; /* TY_* bits, 0 = any */
    char type_text[80];
    struct json_object *const_v; /* borrowed from the schema document */
    char *const_text;
    struct json_object *enum_v; /* borrowed */
    char *enum_text;
    long long min_len, max_len; /* -1 = absent */
    bool has_re;
    regex_t re;
    const char *pattern;
    enum fmt format;
    bool has_min, has_max;
    double min, max;
    long long min_items, max_items;
    bool unique;
    struct snode *items;
    long long min_props, max_props;
    const char **required;
    size_t n_required;
    struct sprop *props;
    size_t n_props;
    struct snode *additional; /* NULL = anything allowed */
    struct snode *names;      /* propertyNames */
    const char *ref_name;     /* $defs entry name */
    struct snode *ref;
    struct snode **all_of;
    size_t n_all_of;
    struct snode *if_s, *then_s, *else_s;
    char *then_text; /* "when grant is authorization_code", or NULL */
    char *else_text;
    struct snode *next; /* every node of one schema, for cleanup */
};

struct sdef {
    const char *name;
    struct snode *node;
};

struct schema {
    char topic[64];
    struct json_object *doc;
    struct snode *root;
    struct sdef *defs;
    size_t n_defs;
    struct snode *nodes;
};

static struct schema *g_schemas;
static size_t g_n_schemas;
static locale_t g_c_locale = (locale_t)0;

/* ---------------------------------------------------------------- compile */

struct cctx {
    struct schema *s;
    const char *file;
    struct err *e;
};

__attribute__((format(printf, 3, 4))) static bool cfail(struct cctx *c, const char *ptr,
                                                        const char *fmt, ...)
{
    char tail[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    return err_set(c->e, ERR_INTERNAL, false, "cannot load schema %s: %s at #%s", c->file, tail,
                   ptr);
}

/* JSON pointer of a child, for start-up error messages (cut when long). */
static void ptr_join(char *out, size_t cap, const char *ptr, const char *key)
{
    int w = snprintf(out, cap, "%s/%s", ptr, key);
    if (w < 0 || (size_t)w >= cap)
        out[cap - 1] = '\0';
}

static void ptr_join_index(char *out, size_t cap, const char *ptr, size_t i)
{
    char idx[24];
    snprintf(idx, sizeof idx, "%zu", i);
    ptr_join(out, cap, ptr, idx);
}

static struct snode *node_new(struct cctx *c)
{
    struct snode *n = calloc(1, sizeof *n);
    if (!n) {
        err_set(c->e, ERR_NOMEM, false, "cannot load schema %s: out of memory", c->file);
        return NULL;
    }
    n->min_len = n->max_len = -1;
    n->min_items = n->max_items = -1;
    n->min_props = n->max_props = -1;
    n->next = c->s->nodes;
    c->s->nodes = n;
    return n;
}

static void node_free(struct snode *n)
{
    if (n->has_re)
        regfree(&n->re);
    free(n->const_text);
    free(n->enum_text);
    free(n->required);
    free(n->props);
    free(n->all_of);
    free(n->then_text);
    free(n->else_text);
    free(n);
}

static bool is_type(struct json_object *o, enum json_type t) { return json_object_is_type(o, t); }

static bool get_count(struct cctx *c, struct json_object *v, const char *ptr, long long *out)
{
    if (!is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return cfail(c, ptr, "must be a non-negative integer");
    *out = json_object_get_int64(v);
    return true;
}

static bool type_bit(const char *name, unsigned *bit)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"null", TY_NULL},     {"boolean", TY_BOOLEAN}, {"object", TY_OBJECT},
                 {"array", TY_ARRAY},   {"number", TY_NUMBER},   {"integer", TY_INTEGER},
                 {"string", TY_STRING}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i].name) == 0) {
            *bit = names[i].bit;
            return true;
        }
    }
    return false;
}

/* "a string, number, boolean or null" from the order written in the schema */
static void type_text_add(char *buf, size_t cap, const char *name, size_t i, size_t n)
{
    size_t used = strlen(buf);
    const char *sep = i == 0 ? "" : (i + 1 == n ? " or " : ", ");
    const char *article = "";
    if (i == 0 && strcmp(name, "null") != 0)
        article = (name[0] == 'a' || name[0] == 'i' || name[0] == 'o') ? "an " : "a ";
    snprintf(buf + used, cap - used, "%s%s%s", sep, article, name);
}

static bool compile_type(struct cctx *c, struct snode *n, struct json_object *v, const char *ptr)
{
    unsigned bit;
    if (is_type(v, json_type_string)) {
        if (!type_bit(json_object_get_string(v), &bit))
            return cfail(c, ptr, "unknown type \"%s\"", json_object_get_string(v));
        n->types = bit;
        type_text_add(n->type_text, sizeof n->type_text, json_object_get_string(v), 0, 1);
        return true;
    }
    if (!is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return cfail(c, ptr, "must be a type name or a non-empty array of them");
    size_t len = json_object_array_length(v);
    for (size_t i = 0; i < len; i++) {
        struct json_object *t = json_object_array_get_idx(v, i);
        if (!is_type(t, json_type_string) || !type_bit(json_object_get_string(t), &bit))
            return cfail(c, ptr, "item %zu is not a type name", i);
        if (n->types & bit)
            return cfail(c, ptr, "type \"%s\" listed twice", json_object_get_string(t));
        n->types |= bit;
        type_text_add(n->type_text, sizeof n->type_text, json_object_get_string(t), i, len);
    }
    return true;
}

/* A printable list of values for error messages: strings as written, other
 * values as JSON; cut after ~200 bytes. Caller frees. */
static char *values_text(struct json_object *const *vals, size_t n)
{
    size_t cap = 256, used = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *t = is_type(vals[i], json_type_string)
                            ? json_object_get_string(vals[i])
                            : json_object_to_json_string_ext(vals[i], JSON_C_TO_STRING_PLAIN);
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", t);
        if (w < 0 || (size_t)w >= cap - used || used > 200) {
            snprintf(buf + (used < cap - 5 ? used : cap - 5), 5, "...");
            break;
        }
        used += (size_t)w;
    }
    return buf;
}

static struct snode *compile(struct cctx *c, struct json_object *js, const char *ptr, bool root);

static bool compile_child(struct cctx *c, struct json_object *v, const char *ptr,
                          struct snode **out)
{
    *out = compile(c, v, ptr, false);
    return *out != NULL;
}

static bool compile_props(struct cctx *c, struct snode *n, struct json_object *v, const char *ptr)
{
    if (!is_type(v, json_type_object))
        return cfail(c, ptr, "must be an object");
    size_t cnt = (size_t)json_object_object_length(v);
    n->props = calloc(cnt ? cnt : 1, sizeof *n->props);
    if (!n->props)
        return err_set(c->e, ERR_NOMEM, false, "cannot load schema %s: out of memory", c->file);
    struct json_object_iterator it = json_object_iter_begin(v), end = json_object_iter_end(v);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        char sub[512];
        const char *name = json_object_iter_peek_name(&it);
        ptr_join(sub, sizeof sub, ptr, name);
        n->props[n->n_props].name = name;
        if (!compile_child(c, json_object_iter_peek_value(&it), sub,
                           &n->props[n->n_props].schema))
            return false;
        n->n_props++;
    }
    return true;
}

static bool compile_required(struct cctx *c, struct snode *n, struct json_object *v,
                             const char *ptr)
{
    if (!is_type(v, json_type_array))
        return cfail(c, ptr, "must be an array of property names");
    size_t len = json_object_array_length(v);
    n->required = calloc(len ? len : 1, sizeof *n->required);
    if (!n->required)
        return err_set(c->e, ERR_NOMEM, false, "cannot load schema %s: out of memory", c->file);
    for (size_t i = 0; i < len; i++) {
        struct json_object *r = json_object_array_get_idx(v, i);
        if (!is_type(r, json_type_string))
            return cfail(c, ptr, "item %zu is not a string", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(n->required[j], json_object_get_string(r)) == 0)
                return cfail(c, ptr, "\"%s\" listed twice", n->required[j]);
        n->required[n->n_required++] = json_object_get_string(r);
    }
    return true;
}

static bool compile_all_of(struct cctx *c, struct snode *n, struct json_object *v, const char *ptr)
{
    if (!is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return cfail(c, ptr, "must be a non-empty array of schemas");
    size_t len = json_object_array_length(v);
    n->all_of = calloc(len, sizeof *n->all_of);
    if (!n->all_of)
        return err_set(c->e, ERR_NOMEM, false, "cannot load schema %s: out of memory", c->file);
    for (size_t i = 0; i < len; i++) {
        char sub[512];
        ptr_join_index(sub, sizeof sub, ptr, i);
        if (!compile_child(c, json_object_array_get_idx(v, i), sub, &n->all_of[i]))
            return false;
        n->n_all_of++;
    }
    return true;
}

static bool compile_pattern(struct cctx *c, struct snode *n, struct json_object *v,
                            const char *ptr)
{
    if (!is_type(v, json_type_string))
        return cfail(c, ptr, "must be a string");
    n->pattern = json_object_get_string(v);
    /* compile in the C locale: ranges such as [A-Za-z] must mean ASCII only */
    locale_t old = uselocale(g_c_locale);
    int rc = regcomp(&n->re, n->pattern, REG_EXTENDED | REG_NOSUB);
    uselocale(old);
    if (rc != 0) {
        char why[128];
        regerror(rc, &n->re, why, sizeof why);
        return cfail(c, ptr, "bad pattern: %s", why);
    }
    n->has_re = true;
    return true;
}

/* Describe the condition of an `if` made of const/enum properties, for error
 * messages of its then/else branches: "grant is authorization_code". */
static bool cond_texts(struct cctx *c, struct snode *n)
{
    const struct snode *f = n->if_s;
    char then_buf[200] = "when ", else_buf[200] = "when ";
    if (f->kind != NODE_SCHEMA || f->n_props == 0)
        return true; /* no readable description: plain messages */
    for (size_t i = 0; i < f->n_props; i++) {
        const struct snode *p = f->props[i].schema;
        const char *vals = p->const_v ? p->const_text : p->enum_text;
        if (p->kind != NODE_SCHEMA || !vals)
            return true;
        bool many = !p->const_v && json_object_array_length(p->enum_v) > 1;
        size_t tu = strlen(then_buf), eu = strlen(else_buf);
        snprintf(then_buf + tu, sizeof then_buf - tu, "%s%s is %s%s", i ? " and " : "",
                 f->props[i].name, many ? "one of " : "", vals);
        snprintf(else_buf + eu, sizeof else_buf - eu, "%s%s is not %s%s", i ? " or " : "",
                 f->props[i].name, many ? "one of " : "", vals);
    }
    n->then_text = strdup(then_buf);
    n->else_text = strdup(else_buf);
    if (!n->then_text || !n->else_text)
        return err_set(c->e, ERR_NOMEM, false, "cannot load schema %s: out of memory", c->file);
    return true;
}

static bool compile_keyword(struct cctx *c, struct snode *n, const char *key,
                            struct json_object *v, const char *ptr, bool root)
{
    /* annotations: accepted, no effect on validation */
    if (strcmp(key, "title") == 0 || strcmp(key, "description") == 0 ||
        strcmp(key, "$comment") == 0 || strcmp(key, "default") == 0)
        return true;
    if (strcmp(key, "$schema") == 0) {
        if (!root)
            return cfail(c, ptr, "$schema is only supported at the top");
        if (!is_type(v, json_type_string) || strcmp(json_object_get_string(v), SCHEMA_DIALECT))
            return cfail(c, ptr, "must be \"%s\"", SCHEMA_DIALECT);
        return true;
    }
    if (strcmp(key, "$id") == 0) {
        if (!root || !is_type(v, json_type_string))
            return cfail(c, ptr, "only a string $id at the top is supported");
        return true;
    }
    if (strcmp(key, "$defs") == 0) {
        if (!root)
            return cfail(c, ptr, "$defs is only supported at the top");
        return true; /* compiled before the root, see schema_load() */
    }
    if (strcmp(key, "type") == 0)
        return compile_type(c, n, v, ptr);
    if (strcmp(key, "enum") == 0) {
        if (!is_type(v, json_type_array) || json_object_array_length(v) == 0)
            return cfail(c, ptr, "must be a non-empty array");
        n->enum_v = v;
        size_t len = json_object_array_length(v);
        struct json_object **vals = calloc(len, sizeof *vals);
        if (!vals)
            return err_set(c->e, ERR_NOMEM, false, "cannot load schema %s: out of memory",
                           c->file);
        for (size_t i = 0; i < len; i++)
            vals[i] = json_object_array_get_idx(v, i);
        n->enum_text = values_text(vals, len);
        free(vals);
        return n->enum_text ? true
                            : err_set(c->e, ERR_NOMEM, false,
                                      "cannot load schema %s: out of memory", c->file);
    }
    if (strcmp(key, "const") == 0) {
        struct json_object *vals[1] = {v};
        n->const_v = v;
        /* json-c represents null as NULL: const null is not supported */
        if (!v)
            return cfail(c, ptr, "const null is not supported");
        n->const_text = values_text(vals, 1);
        return n->const_text ? true
                             : err_set(c->e, ERR_NOMEM, false,
                                       "cannot load schema %s: out of memory", c->file);
    }
    if (strcmp(key, "minLength") == 0)
        return get_count(c, v, ptr, &n->min_len);
    if (strcmp(key, "maxLength") == 0)
        return get_count(c, v, ptr, &n->max_len);
    if (strcmp(key, "minItems") == 0)
        return get_count(c, v, ptr, &n->min_items);
    if (strcmp(key, "maxItems") == 0)
        return get_count(c, v, ptr, &n->max_items);
    if (strcmp(key, "minProperties") == 0)
        return get_count(c, v, ptr, &n->min_props);
    if (strcmp(key, "maxProperties") == 0)
        return get_count(c, v, ptr, &n->max_props);
    if (strcmp(key, "minimum") == 0 || strcmp(key, "maximum") == 0) {
        if (!is_type(v, json_type_int) && !is_type(v, json_type_double))
            return cfail(c, ptr, "must be a number");
        if (key[1] == 'i') {
            n->has_min = true;
            n->min = json_object_get_double(v);
        } else {
            n->has_max = true;
            n->max = json_object_get_double(v);
        }
        return true;
    }
    if (strcmp(key, "pattern") == 0)
        return compile_pattern(c, n, v, ptr);
    if (strcmp(key, "format") == 0) {
        const char *f = is_type(v, json_type_string) ? json_object_get_string(v) : "";
        if (strcmp(f, "uuid") == 0)
            n->format = FMT_UUID;
        else if (strcmp(f, "date-time") == 0)
            n->format = FMT_DATETIME;
        else
            return cfail(c, ptr, "unsupported format \"%s\"", f);
        return true;
    }
    if (strcmp(key, "uniqueItems") == 0) {
        if (!is_type(v, json_type_boolean))
            return cfail(c, ptr, "must be a boolean");
        n->unique = json_object_get_boolean(v);
        return true;
    }
    if (strcmp(key, "items") == 0)
        return compile_child(c, v, ptr, &n->items);
    if (strcmp(key, "required") == 0)
        return compile_required(c, n, v, ptr);
    if (strcmp(key, "properties") == 0)
        return compile_props(c, n, v, ptr);
    if (strcmp(key, "additionalProperties") == 0)
        return compile_child(c, v, ptr, &n->additional);
    if (strcmp(key, "propertyNames") == 0)
        return compile_child(c, v, ptr, &n->names);
    if (strcmp(key, "$ref") == 0) {
        const char *r = is_type(v, json_type_string) ? json_object_get_string(v) : "";
        if (strncmp(r, "#/$defs/", 8) != 0 || r[8] == '\0' || strchr(r + 8, '/'))
            return cfail(c, ptr, "only \"#/$defs/<name>\" references are supported");
        n->ref_name = r + 8;
        return true;
    }
    if (strcmp(key, "allOf") == 0)
        return compile_all_of(c, n, v, ptr);
    if (strcmp(key, "if") == 0)
        return compile_child(c, v, ptr, &n->if_s);
    if (strcmp(key, "then") == 0)
        return compile_child(c, v, ptr, &n->then_s);
    if (strcmp(key, "else") == 0)
        return compile_child(c, v, ptr, &n->else_s);
    return cfail(c, ptr, "unsupported keyword \"%s\"", key);
}

static struct snode *compile(struct cctx *c, struct json_object *js, const char *ptr, bool root)
{
    struct snode *n = node_new(c);
    if (!n)
        return NULL;
    if (is_type(js, json_type_boolean)) {
        n->kind = json_object_get_boolean(js) ? NODE_TRUE : NODE_FALSE;
        return n;
    }
    if (!is_type(js, json_type_object)) {
        cfail(c, ptr, "a schema must be an object or a boolean");
        return NULL;
    }
    struct json_object_iterator it = json_object_iter_begin(js), end = json_object_iter_end(js);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        char sub[512];
        const char *key = json_object_iter_peek_name(&it);
        ptr_join(sub, sizeof sub, ptr, key);
        if (!compile_keyword(c, n, key, json_object_iter_peek_value(&it), sub, root))
            return NULL;
    }
    if ((n->then_s || n->else_s) && !n->if_s) {
        cfail(c, ptr, "then/else without if");
        return NULL;
    }
    if (n->if_s && !cond_texts(c, n))
        return NULL;
    return n;
}

static void schema_free(struct schema *s)
{
    struct snode *n = s->nodes;
    while (n) {
        struct snode *next = n->next;
        node_free(n);
        n = next;
    }
    free(s->defs);
    json_object_put(s->doc);
    memset(s, 0, sizeof *s);
}

static struct snode *def_find(const struct schema *s, const char *name)
{
    for (size_t i = 0; i < s->n_defs; i++)
        if (strcmp(s->defs[i].name, name) == 0)
            return s->defs[i].node;
    return NULL;
}

static bool schema_load(struct schema *s, const struct embedded_file *f, struct err *e)
{
    struct cctx c = {s, f->name, e};
    size_t nlen = strlen(f->name), slen = strlen(SCHEMA_SUFFIX);
    if (nlen <= slen || strcmp(f->name + nlen - slen, SCHEMA_SUFFIX) != 0 ||
        nlen - slen >= sizeof s->topic)
        return cfail(&c, "", "file name must be <topic>" SCHEMA_SUFFIX);
    memcpy(s->topic, f->name, nlen - slen);
    s->topic[nlen - slen] = '\0';

    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return err_set(e, ERR_NOMEM, false, "cannot load schema %s: out of memory", f->name);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    s->doc = json_tokener_parse_ex(tok, f->text, (int)f->len);
    bool parsed = json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    if (!parsed || !is_type(s->doc, json_type_object))
        return cfail(&c, "", "not a JSON object");

    struct json_object *defs = NULL;
    if (json_object_object_get_ex(s->doc, "$defs", &defs)) {
        if (!is_type(defs, json_type_object))
            return cfail(&c, "/$defs", "must be an object");
        size_t cnt = (size_t)json_object_object_length(defs);
        s->defs = calloc(cnt ? cnt : 1, sizeof *s->defs);
        if (!s->defs)
            return err_set(e, ERR_NOMEM, false, "cannot load schema %s: out of memory", f->name);
        struct json_object_iterator it = json_object_iter_begin(defs);
        struct json_object_iterator end = json_object_iter_end(defs);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
            char sub[512];
            const char *name = json_object_iter_peek_name(&it);
            ptr_join(sub, sizeof sub, "/$defs", name);
            s->defs[s->n_defs].name = name;
            s->defs[s->n_defs].node = compile(&c, json_object_iter_peek_value(&it), sub, false);
            if (!s->defs[s->n_defs].node)
                return false;
            s->n_defs++;
        }
    }
    s->root = compile(&c, s->doc, "", true);
    if (!s->root)
        return false;
    for (struct snode *n = s->nodes; n; n = n->next) {
        if (!n->ref_name)
            continue;
        n->ref = def_find(s, n->ref_name);
        if (!n->ref)
            return cfail(&c, "", "$ref to unknown \"#/$defs/%s\"", n->ref_name);
    }
    return true;
}

bool msg_init_files(const struct embedded_file *files, struct err *e)
{
    size_t n = 0;
    if (g_schemas)
        return err_set(e, ERR_INTERNAL, false, "cannot load schemas: already loaded");
    while (files[n].name)
        n++;
    if (n == 0)
        return err_set(e, ERR_INTERNAL, false, "cannot load schemas: none embedded");
    g_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    g_schemas = calloc(n, sizeof *g_schemas);
    if (!g_schemas || !g_c_locale) {
        msg_cleanup();
        return err_set(e, ERR_NOMEM, false, "cannot load schemas: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        g_n_schemas = i + 1;
        if (!schema_load(&g_schemas[i], &files[i], e))
            goto fail;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(g_schemas[j].topic, g_schemas[i].topic) == 0) {
                err_set(e, ERR_INTERNAL, false, "cannot load schemas: topic \"%s\" twice",
                        g_schemas[i].topic);
                goto fail;
            }
        }
    }
    return true;
fail:
    msg_cleanup();
    return false;
}

bool msg_init(struct err *e)
{
    if (g_schemas)
        return true;
    return msg_init_files(sfbridge_schemas, e);
}

void msg_cleanup(void)
{
    for (size_t i = 0; i < g_n_schemas; i++)
        schema_free(&g_schemas[i]);
    free(g_schemas);
    g_schemas = NULL;
    g_n_schemas = 0;
    if (g_c_locale) {
        freelocale(g_c_locale);
        g_c_locale = (locale_t)0;
    }
}

static const struct schema *schema_find(const char *topic)
{
    if (!topic)
        return NULL;
    for (size_t i = 0; i < g_n_schemas; i++)
        if (strcmp(g_schemas[i].topic, topic) == 0)
            return &g_schemas[i];
    return NULL;
}

bool msg_has_schema(const char *topic) { return schema_find(topic) != NULL; }

/* --------------------------------------------------------------- validate */

struct seg {
    const char *key; /* NULL: an array index */
    size_t index;
};

struct vctx {
    struct err *e;
    struct seg path[MAX_PATH_DEPTH];
    size_t depth;
    unsigned eval_depth;
    int silent;              /* > 0 while evaluating an `if`: nothing is reported */
    const char *name_prefix; /* set while checking propertyNames */
};

static bool plain_name(const char *k)
{
    size_t len = strlen(k);
    if (len == 0 || len > 80 || !((k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z') ||
                                  k[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++) {
        char ch = k[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

static size_t put(char *buf, size_t cap, size_t used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put(char *buf, size_t cap, size_t used, const char *fmt, ...)
{
    if (used >= cap)
        return used;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
    if (w < 0)
        return used;
    return (size_t)w >= cap - used ? cap - 1 : used + (size_t)w;
}

/* Render the current path, e.g. operations[0].fields['Bad Name'] */
static void path_render(const struct vctx *v, char *out, size_t cap)
{
    char buf[1024];
    size_t used = 0;
    buf[0] = '\0';
    if (v->depth == 0)
        used = put(buf, sizeof buf, used, "(root)");
    for (size_t i = 0; i < v->depth; i++) {
        const struct seg *s = &v->path[i];
        if (!s->key) {
            used = put(buf, sizeof buf, used, "[%zu]", s->index);
        } else if (plain_name(s->key)) {
            used = put(buf, sizeof buf, used, "%s%s", i ? "." : "", s->key);
        } else {
            used = put(buf, sizeof buf, used, "['");
            size_t klen = strlen(s->key);
            for (size_t k = 0; k < klen && k < 80; k++) {
                unsigned char ch = (unsigned char)s->key[k];
                if (ch == '\'' || ch == '\\')
                    used = put(buf, sizeof buf, used, "\\%c", ch);
                else if (ch < 0x20 || ch > 0x7e || ch == '"')
                    used = put(buf, sizeof buf, used, "\\x%02x", ch);
                else
                    used = put(buf, sizeof buf, used, "%c", ch);
            }
            used = put(buf, sizeof buf, used, "%s']", klen > 80 ? "..." : "");
        }
    }
    if (used > PATH_SHOWN) /* keep the end: it names the field */
        snprintf(out, cap, "...%s", buf + used - (PATH_SHOWN - 3));
    else
        snprintf(out, cap, "%s", buf);
}

__attribute__((format(printf, 2, 3))) static bool verr(struct vctx *v, const char *fmt, ...)
{
    if (v->silent)
        return false;
    char path[PATH_SHOWN + 8], tail[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    path_render(v, path, sizeof path);
    return err_set(v->e, ERR_INVALID_MESSAGE, false, "field \"%s\": %s%s", path,
                   v->name_prefix ? v->name_prefix : "", tail);
}

static bool push_key(struct vctx *v, const char *key)
{
    if (v->depth >= MAX_PATH_DEPTH)
        return verr(v, "is nested too deeply");
    v->path[v->depth].key = key;
    v->path[v->depth].index = 0;
    v->depth++;
    return true;
}

static bool push_index(struct vctx *v, size_t i)
{
    if (v->depth >= MAX_PATH_DEPTH)
        return verr(v, "is nested too deeply");
    v->path[v->depth].key = NULL;
    v->path[v->depth].index = i;
    v->depth++;
    return true;
}

static void pop(struct vctx *v) { v->depth--; }

static bool nonfinite(struct json_object *x)
{
    return is_type(x, json_type_double) && !isfinite(json_object_get_double(x));
}

static unsigned inst_type(struct json_object *x)
{
    switch (json_object_get_type(x)) {
    case json_type_null:
        return TY_NULL;
    case json_type_boolean:
        return TY_BOOLEAN;
    case json_type_object:
        return TY_OBJECT;
    case json_type_array:
        return TY_ARRAY;
    case json_type_string:
        return TY_STRING;
    case json_type_int:
        return TY_NUMBER | TY_INTEGER;
    case json_type_double: {
        double d = json_object_get_double(x);
        if (!isfinite(d))
            return 0;
        return floor(d) == d ? (TY_NUMBER | TY_INTEGER) : TY_NUMBER;
    }
    }
    return 0;
}

/* JSON equality: numbers by value (1 == 1.0), objects regardless of order. */
static bool json_equal(struct json_object *a, struct json_object *b)
{
    unsigned ta = inst_type(a), tb = inst_type(b);
    if ((ta & TY_NUMBER) && (tb & TY_NUMBER)) {
        if (is_type(a, json_type_int) && is_type(b, json_type_int))
            return json_object_get_int64(a) == json_object_get_int64(b) &&
                   json_object_get_uint64(a) == json_object_get_uint64(b);
        return json_object_get_double(a) == json_object_get_double(b);
    }
    if (ta != tb || ta == 0)
        return false;
    switch (ta) {
    case TY_NULL:
        return true;
    case TY_BOOLEAN:
        return json_object_get_boolean(a) == json_object_get_boolean(b);
    case TY_STRING:
        return json_object_get_string_len(a) == json_object_get_string_len(b) &&
               memcmp(json_object_get_string(a), json_object_get_string(b),
                      (size_t)json_object_get_string_len(a)) == 0;
    case TY_ARRAY: {
        size_t len = json_object_array_length(a);
        if (len != json_object_array_length(b))
            return false;
        for (size_t i = 0; i < len; i++)
            if (!json_equal(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
                return false;
        return true;
    }
    case TY_OBJECT: {
        if (json_object_object_length(a) != json_object_object_length(b))
            return false;
        struct json_object_iterator it = json_object_iter_begin(a), end = json_object_iter_end(a);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
            struct json_object *bv = NULL;
            if (!json_object_object_get_ex(b, json_object_iter_peek_name(&it), &bv) ||
                !json_equal(json_object_iter_peek_value(&it), bv))
                return false;
        }
        return true;
    }
    default:
        return false;
    }
}

/* RFC 4122 textual form: 8-4-4-4-12 hex digits, either case */
static bool is_uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-')
                return false;
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                     (ch >= 'A' && ch <= 'F'))) {
            return false;
        }
    }
    return true;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 section 5.6 date-time: full-date "T" full-time, time-offset
 * mandatory; "t" and "z" accepted as the RFC allows, no space separator. */
static bool is_datetime(const char *s, size_t len)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    size_t p = 19;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
        return false;
    if (s[p] == '.') {
        size_t start = ++p;
        while (p < len && s[p] >= '0' && s[p] <= '9')
            p++;
        if (p == start)
            return false;
    }
    if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
        p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
        sign = s[p] == '+' ? 1 : -1;
        if (len - p != 6 || s[p + 3] != ':' || !digits(s + p + 1, 2, &oh) ||
            !digits(s + p + 4, 2, &om))
            return false;
        p += 6;
    } else {
        return false;
    }
    if (p != len)
        return false;
    if (mo < 1 || mo > 12 || d < 1)
        return false;
    int dim = mdays[mo - 1];
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        dim = 29;
    if (d > dim || h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59)
        return false;
    if (sec == 60) {
        /* a leap second only exists at 23:59:60 UTC */
        int utc = (h * 60 + mi - sign * (oh * 60 + om)) % 1440;
        if (utc < 0)
            utc += 1440;
        if (utc != 23 * 60 + 59)
            return false;
    }
    return true;
}

static size_t code_points(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

static bool check_string(struct vctx *v, const struct snode *n, struct json_object *x)
{
    const char *s = json_object_get_string(x);
    size_t len = (size_t)json_object_get_string_len(x);
    if (n->min_len >= 0 || n->max_len >= 0) {
        /* a code point is 1..4 bytes: skip the count when the bytes decide */
        size_t cp;
        if (n->max_len >= 0 && len > 4 * (size_t)n->max_len)
            cp = len; /* certainly too long; don't walk megabytes */
        else
            cp = code_points(s, len);
        if (n->max_len >= 0 && cp > (size_t)n->max_len)
            return verr(v, "must be at most %lld character%s long", n->max_len,
                        n->max_len == 1 ? "" : "s");
        if (n->min_len >= 0 && cp < (size_t)n->min_len)
            return verr(v, "must be at least %lld character%s long", n->min_len,
                        n->min_len == 1 ? "" : "s");
    }
    if (n->format == FMT_UUID && !is_uuid(s, len))
        return verr(v, "must be a UUID (8-4-4-4-12 hex digits)");
    if (n->format == FMT_DATETIME && !is_datetime(s, len))
        return verr(v, "must be an RFC 3339 date-time such as 2026-12-03T19:30:00Z");
    if (n->has_re) {
        bool match = false;
        if (!memchr(s, '\0', len)) {
            locale_t old = uselocale(g_c_locale);
            match = regexec(&n->re, s, 0, NULL, 0) == 0;
            uselocale(old);
        }
        if (!match)
            return verr(v, "must match pattern %s", n->pattern);
    }
    return true;
}

static bool check_number(struct vctx *v, const struct snode *n, struct json_object *x)
{
    if (!n->has_min && !n->has_max)
        return true;
    bool below, above;
    if (is_type(x, json_type_int)) {
        int64_t i = json_object_get_int64(x);
        /* values past INT64_MAX saturate, which is past any maximum we use */
        below = n->has_min && (double)i < n->min;
        above = n->has_max && (double)i > n->max;
    } else {
        double d = json_object_get_double(x);
        below = n->has_min && d < n->min;
        above = n->has_max && d > n->max;
    }
    if (below)
        return verr(v, "must be at least %.17g", n->min);
    if (above)
        return verr(v, "must be at most %.17g", n->max);
    return true;
}

struct uitem {
    struct json_object *o;
    size_t idx;
};

static int scalar_rank(struct json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_null:
        return 0;
    case json_type_boolean:
        return 1;
    case json_type_int:
    case json_type_double:
        return 2;
    case json_type_string:
        return 3;
    default:
        return -1;
    }
}

static int scalar_cmp(struct json_object *a, struct json_object *b)
{
    int ra = scalar_rank(a), rb = scalar_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (ra) {
    case 1:
        return (int)json_object_get_boolean(a) - (int)json_object_get_boolean(b);
    case 2: {
        if (is_type(a, json_type_int) && is_type(b, json_type_int)) {
            int64_t x = json_object_get_int64(a), y = json_object_get_int64(b);
            return x < y ? -1 : x > y;
        }
        double x = json_object_get_double(a), y = json_object_get_double(b);
        return x < y ? -1 : x > y;
    }
    case 3: {
        size_t la = (size_t)json_object_get_string_len(a);
        size_t lb = (size_t)json_object_get_string_len(b);
        int c = memcmp(json_object_get_string(a), json_object_get_string(b), la < lb ? la : lb);
        if (c)
            return c;
        return la < lb ? -1 : la > lb;
    }
    default:
        return 0;
    }
}

static int uitem_cmp(const void *pa, const void *pb)
{
    const struct uitem *a = pa, *b = pb;
    int c = scalar_cmp(a->o, b->o);
    if (c)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Finds a duplicate pair in O(n log n) for scalars, O(n^2) otherwise (arrays
 * are short: maxItems is checked first). */
static bool check_unique(struct vctx *v, struct json_object *x)
{
    size_t len = json_object_array_length(x), first = 0, second = 0;
    bool dup = false, scalars = true;
    for (size_t i = 0; i < len && scalars; i++)
        if (scalar_rank(json_object_array_get_idx(x, i)) < 0 ||
            nonfinite(json_object_array_get_idx(x, i)))
            scalars = false;
    if (len < 2)
        return true;
    if (scalars) {
        struct uitem *items = calloc(len, sizeof *items);
        if (!items)
            return err_set(v->e, ERR_NOMEM, true, "could not validate message: out of memory");
        for (size_t i = 0; i < len; i++) {
            items[i].o = json_object_array_get_idx(x, i);
            items[i].idx = i;
        }
        qsort(items, len, sizeof *items, uitem_cmp);
        for (size_t i = 1; i < len && !dup; i++) {
            if (scalar_cmp(items[i - 1].o, items[i].o) == 0) {
                dup = true;
                first = items[i - 1].idx;
                second = items[i].idx;
            }
        }
        free(items);
    } else {
        for (size_t j = 1; j < len && !dup; j++) {
            for (size_t i = 0; i < j && !dup; i++) {
                if (json_equal(json_object_array_get_idx(x, i), json_object_array_get_idx(x, j))) {
                    dup = true;
                    first = i;
                    second = j;
                }
            }
        }
    }
    if (dup)
        return verr(v, "must not contain duplicates (items %zu and %zu are equal)", first, second);
    return true;
}

static bool validate(struct vctx *v, const struct snode *n, struct json_object *x);

static bool check_array(struct vctx *v, const struct snode *n, struct json_object *x)
{
    size_t len = json_object_array_length(x);
    if (n->max_items >= 0 && len > (size_t)n->max_items)
        return verr(v, "must have at most %lld item%s", n->max_items, n->max_items == 1 ? "" : "s");
    if (n->min_items >= 0 && len < (size_t)n->min_items)
        return verr(v, "must have at least %lld item%s", n->min_items,
                    n->min_items == 1 ? "" : "s");
    if (n->items) {
        for (size_t i = 0; i < len; i++) {
            if (!push_index(v, i))
                return false;
            bool ok = validate(v, n->items, json_object_array_get_idx(x, i));
            pop(v);
            if (!ok)
                return false;
        }
    }
    if (n->unique && !check_unique(v, x))
        return false;
    return true;
}

static const struct snode *prop_find(const struct snode *n, const char *key)
{
    for (size_t i = 0; i < n->n_props; i++)
        if (strcmp(n->props[i].name, key) == 0)
            return n->props[i].schema;
    return NULL;
}

static bool check_name(struct vctx *v, const struct snode *names, const char *key)
{
    struct json_object *k = json_object_new_string(key);
    if (!k)
        return err_set(v->e, ERR_NOMEM, true, "could not validate message: out of memory");
    const char *saved = v->name_prefix;
    v->name_prefix = "invalid property name: ";
    bool ok = validate(v, names, k);
    v->name_prefix = saved;
    json_object_put(k);
    return ok;
}

static bool check_object(struct vctx *v, const struct snode *n, struct json_object *x)
{
    long long cnt = json_object_object_length(x);
    if (n->max_props >= 0 && cnt > n->max_props)
        return verr(v, "must have at most %lld propert%s", n->max_props,
                    n->max_props == 1 ? "y" : "ies");
    if (n->min_props >= 0 && cnt < n->min_props)
        return verr(v, "must have at least %lld propert%s", n->min_props,
                    n->min_props == 1 ? "y" : "ies");
    for (size_t i = 0; i < n->n_required; i++) {
        if (!json_object_object_get_ex(x, n->required[i], NULL)) {
            if (!push_key(v, n->required[i]))
                return false;
            verr(v, "is required");
            pop(v);
            return false;
        }
    }
    struct json_object_iterator it = json_object_iter_begin(x), end = json_object_iter_end(x);
    if (n->names) {
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
            const char *key = json_object_iter_peek_name(&it);
            if (!push_key(v, key))
                return false;
            bool ok = check_name(v, n->names, key);
            pop(v);
            if (!ok)
                return false;
        }
    }
    if (n->n_props == 0 && !n->additional)
        return true;
    for (it = json_object_iter_begin(x); !json_object_iter_equal(&it, &end);
         json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        const struct snode *ps = prop_find(n, key);
        bool ok = true;
        if (!ps && !n->additional)
            continue;
        if (!push_key(v, key))
            return false;
        if (ps)
            ok = validate(v, ps, json_object_iter_peek_value(&it));
        else if (n->additional->kind == NODE_FALSE)
            ok = verr(v, "is not allowed (unknown property)");
        else
            ok = validate(v, n->additional, json_object_iter_peek_value(&it));
        pop(v);
        if (!ok)
            return false;
    }
    return true;
}

/* then/else: a violation names the condition that made the rule apply */
static bool check_branch(struct vctx *v, const struct snode *branch, const char *why,
                         struct json_object *x)
{
    if (v->silent || !why)
        return validate(v, branch, x);
    struct err *outer = v->e, inner = ERR_INIT;
    v->e = &inner;
    bool ok = validate(v, branch, x);
    v->e = outer;
    if (!ok)
        err_set(outer, inner.code, inner.retriable, "%s (%s)", inner.msg, why);
    return ok;
}

static bool validate_node(struct vctx *v, const struct snode *n, struct json_object *x)
{
    if (n->ref && !validate(v, n->ref, x))
        return false;
    if (nonfinite(x))
        return verr(v, "must be a finite number");
    unsigned t = inst_type(x);
    if (n->types && !(n->types & t))
        return verr(v, "must be %s", n->type_text);
    if (n->const_v && !json_equal(n->const_v, x))
        return verr(v, "must be %s", n->const_text);
    if (n->enum_v) {
        size_t len = json_object_array_length(n->enum_v);
        bool found = false;
        for (size_t i = 0; i < len && !found; i++)
            found = json_equal(json_object_array_get_idx(n->enum_v, i), x);
        if (!found)
            return verr(v, "must be one of %s", n->enum_text);
    }
    if ((t & TY_STRING) && !check_string(v, n, x))
        return false;
    if ((t & TY_NUMBER) && !check_number(v, n, x))
        return false;
    if ((t & TY_ARRAY) && !check_array(v, n, x))
        return false;
    if ((t & TY_OBJECT) && !check_object(v, n, x))
        return false;
    for (size_t i = 0; i < n->n_all_of; i++)
        if (!validate(v, n->all_of[i], x))
            return false;
    if (n->if_s) {
        v->silent++;
        bool cond = validate(v, n->if_s, x);
        v->silent--;
        if (cond && n->then_s)
            return check_branch(v, n->then_s, n->then_text, x);
        if (!cond && n->else_s)
            return check_branch(v, n->else_s, n->else_text, x);
    }
    return true;
}

static bool validate(struct vctx *v, const struct snode *n, struct json_object *x)
{
    if (n->kind == NODE_TRUE)
        return true;
    if (n->kind == NODE_FALSE)
        return verr(v, "is not allowed");
    if (v->eval_depth >= MAX_EVAL_DEPTH)
        return verr(v, "is nested too deeply");
    v->eval_depth++;
    bool ok = validate_node(v, n, x);
    v->eval_depth--;
    return ok;
}

bool msg_validate(const char *topic, struct json_object *doc, struct err *e)
{
    if (!g_schemas)
        return err_set(e, ERR_INTERNAL, false, "cannot validate message: schemas not loaded");
    const struct schema *s = schema_find(topic);
    if (!s)
        return err_set(e, ERR_INTERNAL, false, "cannot validate message: no schema for topic \"%s\"",
                       topic ? topic : "(null)");
    /* the path array is large; keep it off small thread stacks' hot frames */
    struct vctx v;
    memset(&v, 0, sizeof v);
    v.e = e;
    return validate(&v, s->root, doc);
}

/* true when the JSON text holds a \u0000 escape: json-c would cut object keys
 * at it and PostgreSQL cannot store it, so such messages are refused whole */
static bool has_nul_escape(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\\')
            continue;
        if (buf[i + 1] == 'u' && len - i >= 6 && memcmp(buf + i + 2, "0000", 4) == 0)
            return true;
        i++; /* skip the escaped character, e.g. the second \ of \\ */
    }
    return false;
}

bool msg_parse(const char *topic, const char *buf, size_t len, struct json_object **out,
               struct err *e)
{
    struct json_object *doc = NULL;
    struct err perr = ERR_INIT;
    bool ok = false;

    *out = NULL;
    if (len > MSG_MAX_BYTES) {
        err_set(e, ERR_INVALID_MESSAGE, false, "message too large: %zu bytes, at most %d allowed",
                len, MSG_MAX_BYTES);
        goto out;
    }
    doc = json_parse(buf, len, &perr);
    if (!doc && err_is_set(&perr)) {
        err_set_sf(e, perr.code, perr.retriable, perr.sf_code, "%s", perr.msg);
        goto out;
    }
    if (has_nul_escape(buf, len)) {
        err_set(e, ERR_INVALID_MESSAGE, false,
                "message contains a NUL character (\\u0000), which cannot be stored");
        goto out;
    }
    /* doc == NULL without an error is the JSON literal null: the schema says why it is wrong */
    if (!msg_validate(topic, doc, e))
        goto out;
    *out = doc;
    doc = NULL;
    ok = true;
out:
    json_object_put(doc);
    return ok;
}
