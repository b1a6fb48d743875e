/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Configuration loading: any bytes, as XML and as JSON, must be parsed,
 * validated and (when valid) turned into the engine's view without a crash
 * or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/log.h"

static struct ly_ctx *ctx;

static void
quiet(enum vmh_log_level level, const char *token, const char *msg, void *opaque)
{
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    LYD_FORMAT formats[] = {LYD_XML, LYD_JSON};

    if (!ctx) {
        vmh_log_init("fuzz", true, NULL);
        vmh_log_set_sink(quiet, NULL);
        vmh_log_route_libyang();
        if (vmh_yang_ctx_new(VMH_TEST_YANG_PATH, &ctx) < 0)
            abort();
    }
    memcpy(text, data, size);
    text[size] = '\0';
    for (size_t i = 0; i < 2; i++) {
        struct lyd_node *tree = NULL;
        struct vmh_config *cfg = NULL;
        char *err = NULL;

        if (vmh_config_load_mem(ctx, text, formats[i], &tree, &err) == 0) {
            if (vmh_config_build(tree, &cfg) == 0)
                vmh_config_free(cfg);
        } else if (!err || strchr(err, '\n')) {
            abort(); /* an error is one line, always */
        }
        free(err);
        lyd_free_siblings(tree);
    }
    free(text);
    return 0;
}
