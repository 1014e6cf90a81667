# packer build -var-file=packer/example.pkrvars.hcl packer/  (the token: PAIRSCALE_FREESWITCH_REPO_TOKEN
# in the environment). CI validates the template with these values (.github/workflows/ci.yml).
region             = "eu-west-1"
subnet_id          = "subnet-0123456789abcdef0"
fleet              = "voice-eu"
freeswitch_version = "1.10.12"
