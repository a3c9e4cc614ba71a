# sfbridge: one build for every binary, test, demo and benchmark.
#   make              build every binary into build/bin/
#   make MODE=asan    the same with ASan+UBSan into build/asan/bin/
#   make test         install what is missing, build (asan), run unit + integration tests on the rig
#   make demo         the whole pipeline on the embedded default rig
#   make bench        benchmarks; figures in build/bench/results.json
MODE ?= debug
ifeq ($(MODE),debug)
BINDIR := build/bin
else
BINDIR := build/$(MODE)/bin
endif
OBJDIR := build/$(MODE)/obj
LIBDIR := build/$(MODE)/lib
TESTDIR := build/$(MODE)/tests

PKGS := rdkafka libcurl json-c libpq openssl libmicrohttpd
CC ?= cc
WARN := -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wcast-qual -Wwrite-strings \
	-Wstrict-prototypes -Wmissing-prototypes -Wvla -Wimplicit-fallthrough
# snprintf truncation is deliberate (it replaces the banned copy functions); gcc-only flag
WARN += $(shell $(CC) -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-format-truncation)
ifeq ($(CI),true)
WARN += -Werror
endif
SCHEMA_VERSION := $(shell ls migrations/[0-9]*.sql 2>/dev/null | sed 's|.*/0*\([0-9]*\)_.*|\1|' | sort -n | tail -1)
# The schema version a build accepts is the highest migration number; the stamp file changes only when
# that number does, so the objects that compile it in are rebuilt exactly then.
SCHEMA_STAMP := build/gen/schema_version
$(shell mkdir -p build/gen; [ "$$(cat $(SCHEMA_STAMP) 2>/dev/null)" = "$(SCHEMA_VERSION)" ] || echo "$(SCHEMA_VERSION)" > $(SCHEMA_STAMP))
CPPFLAGS := -D_GNU_SOURCE -Icommon -Ibuild/gen -Itests/itlib -DSFBRIDGE_SCHEMA_VERSION=$(or $(SCHEMA_VERSION),0)
CFLAGS := -std=c11 -g $(WARN) -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
ifeq ($(MODE),asan)
CFLAGS += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else ifeq ($(MODE),release)
CFLAGS += -O2
else
CFLAGS += -O2
endif

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(OBJDIR)/%.o) $(OBJDIR)/gen/migrations.o $(OBJDIR)/gen/schemas.o
LIB := $(LIBDIR)/libsfbridge.a

SFSIM_SRC := $(filter-out tests/sfsim/main.c,$(wildcard tests/sfsim/*.c))
SFSIM_OBJ := $(SFSIM_SRC:%.c=$(OBJDIR)/%.o)
SFSIM_LIB := $(LIBDIR)/libsfsim.a

WORKERS := $(notdir $(wildcard workers/*))
WORKER_BINS := $(WORKERS:%=$(BINDIR)/%)
BINS := $(WORKER_BINS) $(if $(wildcard tests/sfsim/main.c),$(BINDIR)/sfsim)

# One Criterion binary per test file, so one broken file cannot hide the others.
# tests/test_sfsim*.c link the emulator library; other tests/test_*.c link libsfbridge.
# tests/it_*.c are integration tests (run on the rig) and link tests/itlib/*.c too.
UNIT_SRC := $(wildcard tests/test_*.c)
UNIT_BINS := $(patsubst tests/%.c,$(TESTDIR)/%,$(UNIT_SRC))
IT_SRC := $(wildcard tests/it_*.c)
IT_BINS := $(patsubst tests/%.c,$(TESTDIR)/%,$(IT_SRC))
ITLIB_OBJ := $(patsubst %.c,$(OBJDIR)/%.o,$(wildcard tests/itlib/*.c))
BENCH_SRC := $(wildcard tests/bench/*.c)

.PHONY: all tests deps test demo demo-down bench chaos fuzz clean rig-up rig-down
all: $(BINS)

tests: all $(UNIT_BINS) $(IT_BINS)

# migrations and schemas are compiled in, so a binary never runs against files of another version
build/gen/migrations.c: $(sort $(wildcard migrations/*.sql)) tests/rig/embed
	@mkdir -p $(dir $@)
	tests/rig/embed sfbridge_migrations $(sort $(wildcard migrations/*.sql)) > $@.tmp && mv $@.tmp $@

build/gen/schemas.c: $(sort $(wildcard schemas/*.schema.json)) tests/rig/embed
	@mkdir -p $(dir $@)
	tests/rig/embed sfbridge_schemas $(sort $(wildcard schemas/*.schema.json)) > $@.tmp && mv $@.tmp $@

$(OBJDIR)/gen/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(filter-out -Wpedantic,$(CFLAGS)) -Wno-overlength-strings -c $< -o $@

$(OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(OBJDIR)/common/worker.o $(OBJDIR)/workers/sfbridge-scheduler/main.o: $(SCHEMA_STAMP)

$(LIB): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SFSIM_LIB): $(SFSIM_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BINDIR)/sfsim: $(OBJDIR)/tests/sfsim/main.o $(SFSIM_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

define worker_rule
$(BINDIR)/$(1): $(patsubst %.c,$(OBJDIR)/%.o,$(wildcard workers/$(1)/*.c)) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) $$^ $$(LDLIBS) -o $$@
endef
$(foreach w,$(WORKERS),$(eval $(call worker_rule,$(w))))

$(TESTDIR)/test_sfsim%: $(OBJDIR)/tests/test_sfsim%.o $(SFSIM_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcriterion -o $@

$(TESTDIR)/test_%: $(OBJDIR)/tests/test_%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcriterion -o $@

# tests/test_fuzz_regress.c also replays the emulator's SOQL parser inputs: it links libsfsim too
$(TESTDIR)/test_fuzz_regress: $(OBJDIR)/tests/test_fuzz_regress.o $(LIB) $(SFSIM_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcriterion -o $@

$(TESTDIR)/it_%: $(OBJDIR)/tests/it_%.o $(ITLIB_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcriterion -o $@

$(BINDIR)/bench-%: $(OBJDIR)/tests/bench/%.o $(LIB) $(SFSIM_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

deps:
	tests/rig/deps

test:
	tests/rig/deps --quiet
	$(MAKE) -s MODE=asan tests
	tests/run

demo:
	tests/rig/deps --quiet
	$(MAKE) all
	tests/demo/run

demo-down:
	tests/demo/down

bench:
	tests/rig/deps --quiet
	$(MAKE) all $(BENCH_SRC:tests/bench/%.c=$(BINDIR)/bench-%)
	tests/bench/run

chaos:
	tests/rig/deps --quiet
	$(MAKE) MODE=asan all
	tests/chaos/run

fuzz:
	tests/fuzz/run

rig-up:
	tests/rig/up

rig-down:
	tests/rig/down

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
