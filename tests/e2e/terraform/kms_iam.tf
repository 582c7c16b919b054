# KMS keys and the IAM entities used with them, applied by
# tests/e2e/test_terraform.py against a ferrokms server the test starts.
# Every aws_kms_* resource and data source of hashicorp/aws 5.100.0 that
# ferrokms can serve is here; the test's docstring lists those left out.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

variable "endpoint" { type = string }
variable "access_key" { type = string }
variable "secret_key" {
  type      = string
  sensitive = true
}
variable "suffix" { type = string }
# 32 random bytes, base64: the material of the imported keys.
variable "key_material" {
  type      = string
  sensitive = true
}
# A ciphertext the test made with boto3 (encryption context app=terraform),
# for the ephemeral aws_kms_secrets, which must be known when planning.
variable "boto3_ciphertext" { type = string }
variable "boto3_plaintext" {
  type      = string
  sensitive = true
}
# When the imported material of aws_kms_external_key.imported expires (AWS
# takes at most 365 days ahead).
variable "valid_to" { type = string }

locals {
  account = data.aws_caller_identity.me.account_id
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = var.access_key
  secret_key                  = var.secret_key
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_credentials_validation = true
  max_retries                 = 1
  endpoints {
    kms = var.endpoint
    iam = var.endpoint
    sts = var.endpoint
  }
}

provider "aws" {
  alias                       = "west"
  region                      = "us-west-2"
  access_key                  = var.access_key
  secret_key                  = var.secret_key
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_credentials_validation = true
  max_retries                 = 1
  endpoints {
    kms = var.endpoint
    iam = var.endpoint
    sts = var.endpoint
  }
}

data "aws_caller_identity" "me" {}

# ---------------------------------------------------------------- IAM

resource "aws_iam_role" "app" {
  name = "tf-app-${var.suffix}"
  path = "/tf/"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${local.account}:root" }
      Action    = "sts:AssumeRole"
    }]
  })
  description          = "role of the Terraform test"
  max_session_duration = 7200
  tags                 = { team = "blue", env = "test" }
}

resource "aws_iam_role_policy" "app_inline" {
  name = "use-key"
  role = aws_iam_role.app.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
      Resource = aws_kms_key.symmetric.arn
    }]
  })
}

resource "aws_iam_policy" "kms_read" {
  name        = "tf-kms-read-${var.suffix}"
  path        = "/tf/"
  description = "read KMS keys"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["kms:DescribeKey", "kms:ListKeys", "kms:ListAliases"]
      Resource = "*"
    }]
  })
  tags = { owner = "platform", "cost-center" = "42" }
}

resource "aws_iam_role_policy_attachment" "app_read" {
  role       = aws_iam_role.app.name
  policy_arn = aws_iam_policy.kms_read.arn
}

resource "aws_iam_instance_profile" "app" {
  name = "tf-profile-${var.suffix}"
  path = "/tf/"
  role = aws_iam_role.app.name
  tags = { purpose = "ec2" }
}

resource "aws_iam_user" "ci" {
  name = "tf-ci-${var.suffix}"
  path = "/tf/"
  tags = { team = "blue" }
}

resource "aws_iam_access_key" "ci" {
  user = aws_iam_user.ci.name
}

resource "aws_iam_user_policy" "ci_inline" {
  name = "sign"
  user = aws_iam_user.ci.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["kms:Sign", "kms:Verify", "kms:GetPublicKey"]
      Resource = aws_kms_key.rsa.arn
    }]
  })
}

resource "aws_iam_user_policy_attachment" "ci_read" {
  user       = aws_iam_user.ci.name
  policy_arn = aws_iam_policy.kms_read.arn
}

resource "aws_iam_group" "readers" {
  name = "tf-readers-${var.suffix}"
  path = "/tf/"
}

resource "aws_iam_group" "signers" {
  name = "tf-signers-${var.suffix}"
}

resource "aws_iam_group_policy" "readers_inline" {
  name  = "list"
  group = aws_iam_group.readers.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "kms:ListKeys"
      Resource = "*"
    }]
  })
}

resource "aws_iam_group_policy_attachment" "readers_read" {
  group      = aws_iam_group.readers.name
  policy_arn = aws_iam_policy.kms_read.arn
}

resource "aws_iam_group_membership" "readers" {
  name  = "readers-members"
  group = aws_iam_group.readers.name
  users = [aws_iam_user.ci.name]
}

resource "aws_iam_user_group_membership" "ci_signers" {
  user   = aws_iam_user.ci.name
  groups = [aws_iam_group.signers.name]
}

# ---------------------------------------------------------------- KMS keys

resource "aws_kms_key" "symmetric" {
  description             = "symmetric, rotated every 180 days"
  deletion_window_in_days = 7
  enable_key_rotation     = true
  rotation_period_in_days = 180
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "Enable IAM User Permissions"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${local.account}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "Allow the app role"
        Effect    = "Allow"
        Principal = { AWS = aws_iam_role.app.arn }
        Action    = ["kms:Encrypt", "kms:Decrypt"]
        Resource  = "*"
      },
    ]
  })
  tags = { team = "blue", env = "test" }
}

resource "aws_kms_key" "rsa" {
  description              = "RSA signing"
  customer_master_key_spec = "RSA_2048"
  key_usage                = "SIGN_VERIFY"
  deletion_window_in_days  = 7
}

resource "aws_kms_key" "ecc" {
  description              = "ECC signing"
  customer_master_key_spec = "ECC_NIST_P256"
  key_usage                = "SIGN_VERIFY"
  deletion_window_in_days  = 7
}

resource "aws_kms_key" "hmac" {
  description              = "HMAC"
  customer_master_key_spec = "HMAC_256"
  key_usage                = "GENERATE_VERIFY_MAC"
  deletion_window_in_days  = 7
}

resource "aws_kms_key" "multi_region" {
  description             = "multi-Region primary"
  multi_region            = true
  deletion_window_in_days = 7
}

resource "aws_kms_replica_key" "west" {
  provider                = aws.west
  description             = "multi-Region replica"
  primary_key_arn         = aws_kms_key.multi_region.arn
  deletion_window_in_days = 7
  tags                    = { replica = "yes" }
}

resource "aws_kms_key" "with_policy_resource" {
  description             = "policy set by aws_kms_key_policy"
  deletion_window_in_days = 7
}

resource "aws_kms_key_policy" "separate" {
  key_id = aws_kms_key.with_policy_resource.id
  policy = jsonencode({
    Version = "2012-10-17"
    Id      = "separate"
    Statement = [{
      Sid       = "Root"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${local.account}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_kms_alias" "symmetric" {
  name          = "alias/tf-${var.suffix}"
  target_key_id = aws_kms_key.symmetric.key_id
}

resource "aws_kms_grant" "equals" {
  name              = "tf-grant-equals"
  key_id            = aws_kms_key.symmetric.key_id
  grantee_principal = aws_iam_role.app.arn
  operations        = ["Encrypt", "Decrypt", "GenerateDataKey"]
  constraints {
    encryption_context_equals = { app = "terraform" }
  }
}

resource "aws_kms_grant" "subset" {
  name               = "tf-grant-subset"
  key_id             = aws_kms_key.symmetric.arn
  grantee_principal  = aws_iam_user.ci.arn
  retiring_principal = aws_iam_role.app.arn
  operations         = ["Decrypt"]
  constraints {
    encryption_context_subset = { app = "terraform" }
  }
}

resource "aws_kms_external_key" "imported" {
  description             = "imported material"
  key_material_base64     = var.key_material
  deletion_window_in_days = 7
  valid_to                = var.valid_to
  enabled                 = true
  tags                    = { origin = "external" }
}

resource "aws_kms_external_key" "pending" {
  description             = "waiting for material"
  deletion_window_in_days = 7
}

resource "aws_kms_external_key" "mr_primary" {
  description             = "multi-Region imported primary"
  multi_region            = true
  key_material_base64     = var.key_material
  enabled                 = true
  deletion_window_in_days = 7
}

resource "aws_kms_replica_external_key" "west" {
  provider                = aws.west
  description             = "multi-Region imported replica"
  primary_key_arn         = aws_kms_external_key.mr_primary.arn
  key_material_base64     = var.key_material
  enabled                 = true
  deletion_window_in_days = 7
}

resource "aws_kms_ciphertext" "secret" {
  key_id    = aws_kms_alias.symmetric.name
  plaintext = "made by terraform"
  context   = { app = "terraform" }
}

# ---------------------------------------------------------------- data sources

data "aws_kms_key" "by_alias" {
  key_id = aws_kms_alias.symmetric.name
}

data "aws_kms_alias" "symmetric" {
  name = aws_kms_alias.symmetric.name
}

data "aws_kms_public_key" "rsa" {
  key_id = aws_kms_key.rsa.arn
}

data "aws_kms_ciphertext" "secret" {
  key_id    = aws_kms_key.symmetric.key_id
  plaintext = "made by a data source"
  context   = { app = "terraform" }
}

data "aws_kms_secrets" "both" {
  secret {
    name    = "resource"
    payload = aws_kms_ciphertext.secret.ciphertext_blob
    context = { app = "terraform" }
  }
  secret {
    name    = "data"
    payload = data.aws_kms_ciphertext.secret.ciphertext_blob
    context = { app = "terraform" }
  }
}

ephemeral "aws_kms_secrets" "boto3" {
  secret {
    name    = "boto3"
    payload = var.boto3_ciphertext
    context = { app = "terraform" }
  }
  lifecycle {
    postcondition {
      condition     = self.plaintext["boto3"] == var.boto3_plaintext
      error_message = "the ephemeral aws_kms_secrets did not decrypt the test's ciphertext"
    }
  }
}

# ---------------------------------------------------------------- outputs

output "account" { value = local.account }
output "symmetric_key_id" { value = aws_kms_key.symmetric.key_id }
output "key_ids" {
  value = {
    symmetric       = aws_kms_key.symmetric.key_id
    rsa             = aws_kms_key.rsa.key_id
    ecc             = aws_kms_key.ecc.key_id
    hmac            = aws_kms_key.hmac.key_id
    multi_region    = aws_kms_key.multi_region.key_id
    policy_resource = aws_kms_key.with_policy_resource.key_id
    imported        = aws_kms_external_key.imported.id
    pending         = aws_kms_external_key.pending.id
    mr_primary      = aws_kms_external_key.mr_primary.id
  }
}
output "replica_key_ids" {
  value = {
    replica          = aws_kms_replica_key.west.key_id
    replica_external = aws_kms_replica_external_key.west.key_id
  }
}
output "alias_arn" { value = aws_kms_alias.symmetric.arn }
output "data_key_arn" { value = data.aws_kms_key.by_alias.arn }
output "data_alias_target" { value = data.aws_kms_alias.symmetric.target_key_id }
output "public_key_pem" { value = data.aws_kms_public_key.rsa.public_key_pem }
output "grant_ids" {
  value = [aws_kms_grant.equals.grant_id, aws_kms_grant.subset.grant_id]
}
output "secrets" {
  value     = data.aws_kms_secrets.both.plaintext
  sensitive = true
}
output "imported_state" { value = aws_kms_external_key.imported.key_state }
output "pending_state" { value = aws_kms_external_key.pending.key_state }
output "iam" {
  value = {
    role             = aws_iam_role.app.name
    policy_arn       = aws_iam_policy.kms_read.arn
    instance_profile = aws_iam_instance_profile.app.name
    user             = aws_iam_user.ci.name
    access_key_id    = aws_iam_access_key.ci.id
    groups           = [aws_iam_group.readers.name, aws_iam_group.signers.name]
  }
}
output "access_key_secret" {
  value     = aws_iam_access_key.ci.secret
  sensitive = true
}
