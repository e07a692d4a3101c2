# The templates domain (core/domain/templates.c, template_versions.c,
# files.c) without HTTP, on the real storage plugins (atr_add_domain_test:
# SQLite, and PostgreSQL as test_templates_domain_postgres).
atr_add_domain_test(test_templates_domain
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_templates_domain.c)
# template_versions.agent_spec: a new version keeps its template.yaml's agent.
atr_add_domain_test(test_template_agent_spec
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_template_agent_spec.c)
