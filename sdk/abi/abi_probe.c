/* sdk/abi/abi_probe.c — every type of the SDK, reachable from one exported
 * function, so that abidw can describe the SDK's ABI from a shared object.
 *
 * The SDK is headers only: nothing here is shipped or linked. tests/sdk/
 * abi_check.sh compiles this file with -g into a scratch .so, runs abidw on
 * it and compares the result with the baseline atrium-sdk.abi (abidiff,
 * with atrium-sdk.abignore allowing what a minor version may add). Add a
 * parameter here for every new public type.
 */
#include "atrium/atrium.h"

ATR_EXPORT void atr_abi_probe(
    const atr_plugin_t *plugin, const atr_host_t *host,
    const atr_option_t *option, const atr_storage_ops_t *storage,
    const atr_auth_ops_t *auth, const atr_provisioner_ops_t *provisioner,
    const atr_observer_ops_t *observer, const atr_ops_header_t *ops_header,
    const atr_prov_parse_request_t *parse_req,
    const atr_prov_apply_request_t *apply_req,
    const atr_prov_apply_result_t *apply_res,
    const atr_prov_resource_t *resource, const atr_prov_metadata_t *metadata,
    const atr_param_value_t *param, const atr_auth_identity_t *identity,
    const atr_event_t *event, const atr_value_t *value,
    const atr_metric_family_t *family, const atr_metric_sample_t *sample,
    const atr_plugin_info_t *info, const atr_http_request_t *request,
    atr_errno_t err, atr_log_level_t level, atr_metric_type_t metric_type,
    atr_option_type_t option_type, enum atr_option_flag option_flag,
    atr_plugin_kind_t kind, atr_transition_t transition,
    atr_value_type_t value_type, atr_tx_mode_t tx_mode,
    enum atr_db_feature feature, enum atr_db_sub_flag sub_flag,
    atr_plugin_entry_fn entry, atr_route_fn route, atr_metric_visit_fn visit,
    atr_plugin_visit_fn plugin_visit, atr_db_sub_fn sub_fn,
    atr_prov_log_fn log_fn, atr_prov_canceled_fn canceled_fn,
    const atr_prov_agent_t *agent);

void atr_abi_probe(
    const atr_plugin_t *plugin, const atr_host_t *host,
    const atr_option_t *option, const atr_storage_ops_t *storage,
    const atr_auth_ops_t *auth, const atr_provisioner_ops_t *provisioner,
    const atr_observer_ops_t *observer, const atr_ops_header_t *ops_header,
    const atr_prov_parse_request_t *parse_req,
    const atr_prov_apply_request_t *apply_req,
    const atr_prov_apply_result_t *apply_res,
    const atr_prov_resource_t *resource, const atr_prov_metadata_t *metadata,
    const atr_param_value_t *param, const atr_auth_identity_t *identity,
    const atr_event_t *event, const atr_value_t *value,
    const atr_metric_family_t *family, const atr_metric_sample_t *sample,
    const atr_plugin_info_t *info, const atr_http_request_t *request,
    atr_errno_t err, atr_log_level_t level, atr_metric_type_t metric_type,
    atr_option_type_t option_type, enum atr_option_flag option_flag,
    atr_plugin_kind_t kind, atr_transition_t transition,
    atr_value_type_t value_type, atr_tx_mode_t tx_mode,
    enum atr_db_feature feature, enum atr_db_sub_flag sub_flag,
    atr_plugin_entry_fn entry, atr_route_fn route, atr_metric_visit_fn visit,
    atr_plugin_visit_fn plugin_visit, atr_db_sub_fn sub_fn,
    atr_prov_log_fn log_fn, atr_prov_canceled_fn canceled_fn,
    const atr_prov_agent_t *agent) {
  (void)plugin, (void)host, (void)option, (void)storage, (void)auth;
  (void)provisioner, (void)observer, (void)ops_header, (void)parse_req;
  (void)apply_req, (void)apply_res, (void)resource, (void)metadata;
  (void)param, (void)identity, (void)event, (void)value, (void)family;
  (void)sample, (void)info, (void)request, (void)err, (void)level;
  (void)metric_type, (void)option_type, (void)option_flag, (void)kind;
  (void)transition, (void)value_type, (void)tx_mode, (void)feature;
  (void)sub_flag, (void)entry, (void)route, (void)visit, (void)plugin_visit;
  (void)sub_fn, (void)log_fn, (void)canceled_fn, (void)agent;
}
