"""esia-onboard's rules and parsers, shared by modules, filters and tools.

One rule, one place: every check of a setting is a Python function here.
Modules import it as ``ansible.module_utils.esia_onboard.<topic>`` (Ansible
ships the package with the module); controller-side code (filter plugins,
tools, tests) first makes the same import name resolve with
``esia_onboard_bootstrap`` (see README.md beside this file).
"""
