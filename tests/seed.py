"""Facts typed from the seed (shared/seed) for the tests: never read from the code under test."""

# The seed's test-environment application, in the seed's order.
SEED_SCOPES = [
    "openid",
    "fullname",
    "birthdate",
    "gender",
    "snils",
    "inn",
    "id_doc",
    "birthplace",
    "medical_doc",
    "drivers_licence_doc",
    "birth_cert_doc",
    "email",
    "mobile",
    "contacts",
    "usr_org",
    "kid_fullname",
    "kid_birthdate",
    "kid_gender",
    "kid_snils",
    "kid_inn",
    "kid_birth_cert_doc",
    "kid_medical_doc",
]
