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
#include <sys/types.h>

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
/* Whether a v2c request with this community from this source (sockaddr)
 * may read. */
bool vmh_snmp_conf_community_allows(const struct vmh_snmp_conf *conf, const char *community,
                                    size_t len, const void *sockaddr);
const struct vmh_snmp_user *vmh_snmp_conf_find_user(const struct vmh_snmp_conf *conf,
                                                    const char *name, size_t len);
/* Whether a target sends the same notifications the same way (its user's
 * keys included): a target that stays the same keeps its session. */
bool vmh_snmp_target_equal(const struct vmh_snmp_target *a, const struct vmh_snmp_target *b);
/* What becomes of the targets of `from` in `to`: match[j] is the index in
 * from of the target of the same name as to->targets[j], or -1 when it is
 * new; changed[j] whether its settings differ.  match and changed have
 * to->n_targets entries. */
void vmh_snmp_conf_match_targets(const struct vmh_snmp_conf *from, const struct vmh_snmp_conf *to,
                                 ssize_t *match, bool *changed);
/* How the agent runs under conf: not at all (nothing configured), as its
 * own master (listening on agent-address, or only sending notifications),
 * or as an AgentX subagent. */
enum vmh_snmp_role { VMH_SNMP_OFF, VMH_SNMP_MASTER, VMH_SNMP_SUBAGENT };
enum vmh_snmp_role vmh_snmp_conf_role(const struct vmh_snmp_conf *conf);

/* --- the agent --- */

struct vmh_snmp;

struct vmh_snmp_options {
    const char *state_dir; /* net-snmp's persistent files go to STATE_DIR/snmp */
    const char *sys_descr; /* NULL: a default */
};

/* The agent, not running yet (no configuration).  Call before any thread
 * of the daemon runs: it sets net-snmp's environment. */
int vmh_snmp_new(const struct vmh_snmp_options *opts, struct vmh_snmp **out);
/* The engine whose snapshots are served and whose events are notified:
 * once, before the engine's loop starts and before the first apply. */
void vmh_snmp_attach(struct vmh_snmp *snmp, struct vmh_engine *engine);

/* A configuration change, in the steps of the configuration transaction
 * (txn.h).  The caller's thread hands every step to the net-snmp thread
 * and waits for it; commits must not overlap.
 *
 * prepare takes conf over and binds the listening addresses that are new
 * (an address that stays keeps its socket); it starts the net-snmp
 * thread when the agent was off and must listen.  Negative errno when an
 * address cannot be bound (-EADDRINUSE: taken), *address (caller frees)
 * naming it; nothing has changed then.  abort releases what prepare took;
 * apply switches over and cannot fail: communities and users at once,
 * listeners registered and released, targets opened and closed (a target
 * that stays the same keeps its session, queue and counters), the
 * net-snmp thread restarted when the role changes (master, subagent,
 * AgentX socket), stopped when nothing is configured any more. */
struct vmh_snmp_change;
int vmh_snmp_prepare(struct vmh_snmp *snmp, struct vmh_snmp_conf *conf,
                     struct vmh_snmp_change **change, char **address);
void vmh_snmp_abort(struct vmh_snmp *snmp, struct vmh_snmp_change *change);
void vmh_snmp_apply(struct vmh_snmp *snmp, struct vmh_snmp_change *change);
/* prepare then apply: for a start outside a transaction (tests). */
int vmh_snmp_configure(struct vmh_snmp *snmp, struct vmh_snmp_conf *conf);

/* Registers the "snmp" subscriber of agent/snmp with the configuration
 * transaction: snmp runs as the configuration says from the startup
 * commit on (engine: where the engine subscriber puts the engine, which
 * it creates at startup before this subscriber applies). */
void vmh_snmp_subscribe(struct vmh_txn *txn, struct vmh_snmp *snmp, struct vmh_engine **engine);

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
#define VMH_SNMP_TARGET_NAME_MAX 64 /* the YANG length of a target's name */
/* Per-target counters and name (any thread); false when i is out of range. */
bool vmh_snmp_target_stats(struct vmh_snmp *snmp, size_t i, char name[VMH_SNMP_TARGET_NAME_MAX + 1],
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
