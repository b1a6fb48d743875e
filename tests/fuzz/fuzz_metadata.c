/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The assignment element of domain metadata, as a VIM (or anyone able to
 * edit a domain) may write it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virt/virt.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    struct vmh_vm_meta meta;

    memcpy(text, data, size);
    text[size] = '\0';
    vmh_virt_parse_assignment(text, &meta);
    if (meta.has_ppt && meta.ppt > 86400)
        abort();
    if (meta.manager && (!*meta.manager || strlen(meta.manager) > 64))
        abort();
    vmh_vm_meta_clear(&meta);
    free(text);
    return 0;
}
