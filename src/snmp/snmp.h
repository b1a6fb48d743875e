/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The SNMP front end: NFV-VM-HEALTH-MIB served from engine snapshots, as an
 * embedded master agent or as an AgentX subagent, and the notifications
 * (traps and informs) the engine's events turn into.
 *
 * net-snmp is built without thread support on Debian, so one thread of this
 * subsystem makes every net-snmp call; the engine hands it events through a
 * queue and a pipe and never waits on it. */
#ifndef VMH_SNMP_SNMP_H
#define VMH_SNMP_SNMP_H

#include "config/txn.h"
#include "core/engine.h"

#include <libyang/libyang.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- configuration (agent/snmp of vmhealth-agent) --- */

enum vmh_snmp_auth { VMH_SNMP_AUTH_SHA, VMH_SNMP_AUTH_SHA256, VMH_SNMP_AUTH_SHA512 };
enum vmh_snmp_priv { VMH_SNMP_PRIV_AES, VMH_SNMP_PRIV_AES256 };
enum vmh_snmp_level { VMH_SNMP_NOAUTH, VMH_SNMP_AUTHNOPRIV, VMH_SNMP_AUTHPRIV };

struct vmh_snmp_community {
    char *name;
    bool has_source;
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix_len;
};

struct vmh_snmp_user {
    char *name;
    enum vmh_snmp_auth auth;
    char *auth_pass;
    enum vmh_snmp_priv priv;
    char *priv_pass; /* the auth passphrase when not configured */
};

struct vmh_snmp_target {
    char *name;
    char *address;
    uint16_t port;
    bool v3;
    char *community;
    const struct vmh_snmp_user *user; /* v3 */
    enum vmh_snmp_level level;
    char *engine_id; /* hex, NULL when unset */
    bool inform;
    uint32_t timeout_ms;
    uint8_t retries;
};

struct vmh_snmp_conf {
    char **addresses;
    size_t n_addresses;
    char *agentx_socket; /* NULL: embedded master (when addresses are set) */
    struct vmh_snmp_community *communities;
    size_t n_communities;
    struct vmh_snmp_user *users;
    size_t n_users;
    struct vmh_snmp_target *targets;
    size_t n_targets;
};

/* Reads /vmhealth-agent:agent/snmp of a validated tree (NULL: none).  Returns
 * 0 or a negative errno; *err (caller frees) says why a value was refused. */
int vmh_snmp_conf_build(const struct lyd_node *tree, struct vmh_snmp_conf **conf, char **err);
void vmh_snmp_conf_free(struct vmh_snmp_conf *conf);
/* Registers the "snmp" subscriber of agent/snmp with the configuration
 * transaction. */
void vmh_snmp_subscribe(struct vmh_txn *txn);
/* Whether a v2c request with this community from this source (sockaddr)
 * may read. */
bool vmh_snmp_conf_community_allows(const struct vmh_snmp_conf *conf, const char *community,
                                    size_t len, const void *sockaddr);
const struct vmh_snmp_user *vmh_snmp_conf_find_user(const struct vmh_snmp_conf *conf,
                                                    const char *name, size_t len);

/* --- the agent --- */

struct vmh_snmp;

struct vmh_snmp_options {
    const char *state_dir; /* net-snmp's persistent files go to STATE_DIR/snmp */
    const char *sys_descr; /* NULL: a default */
};

/* Takes conf over and registers the event observer: call before the loop
 * starts. */
int vmh_snmp_new(struct vmh_engine *engine, struct vmh_snmp_conf *conf,
                 const struct vmh_snmp_options *opts, struct vmh_snmp **out);
/* Starts the net-snmp thread and returns once the listeners accept (or
 * the subagent is set up); negative when a listener cannot be opened. */
int vmh_snmp_start(struct vmh_snmp *snmp);
/* Sends what is queued, stops the thread (informs still unanswered are
 * counted failed).  Callable from any thread but the loop's. */
void vmh_snmp_stop(struct vmh_snmp *snmp);
void vmh_snmp_free(struct vmh_snmp *snmp);

struct vmh_snmp_target_stats {
    uint64_t sent;   /* traps handed to the transport, informs sent */
    uint64_t acked;  /* informs acknowledged */
    uint64_t failed; /* informs given up after their retries, send errors */
    uint64_t retried;
    uint64_t dropped; /* never sent: queue overflow or no session */
};
/* Per-target counters (any thread); false when i is out of range. */
bool vmh_snmp_target_stats(struct vmh_snmp *snmp, size_t i, const char **name,
                           struct vmh_snmp_target_stats *out);
/* Logs every target's counters (any thread; NULL: nothing). */
void vmh_snmp_log_target_stats(struct vmh_snmp *snmp);
/* Adds the counters of every target as the state container of its
 * /vmhealth-agent:agent/snmp/target entry in tree, an operational tree
 * holding the configuration (a target no longer configured there is left
 * out).  Any thread; snmp NULL: nothing.  0 or a negative errno. */
int vmh_snmp_state_add(struct vmh_snmp *snmp, struct lyd_node *tree);
/* Events queued and not yet handled by the net-snmp thread (any thread). */
size_t vmh_snmp_queue_length(struct vmh_snmp *snmp);

#endif
