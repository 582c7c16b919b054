# An external key store (aws_kms_custom_key_store, EXTERNAL_KEY_STORE) and
# the data source that reads it, applied by tests/e2e/test_terraform.py
# against a ferrokms KMS that trusts a ferrokms XKS proxy (`serve --xks`)
# the test starts over HTTPS; then a key in the store, from the store's id.

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
variable "proxy_endpoint" { type = string }
variable "proxy_access_key_id" {
  type      = string
  sensitive = true
}
variable "proxy_secret" {
  type      = string
  sensitive = true
}
# The store's name, changed by the test between two applies (an update in
# place: UpdateCustomKeyStore).
variable "store_name" { type = string }

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

resource "aws_kms_custom_key_store" "xks" {
  custom_key_store_name  = var.store_name
  custom_key_store_type  = "EXTERNAL_KEY_STORE"
  xks_proxy_connectivity = "PUBLIC_ENDPOINT"
  xks_proxy_uri_endpoint = var.proxy_endpoint
  xks_proxy_uri_path     = "/xks/kms/xks/v1"
  xks_proxy_authentication_credential {
    access_key_id         = var.proxy_access_key_id
    raw_secret_access_key = var.proxy_secret
  }
}

data "aws_kms_custom_key_store" "by_id" {
  custom_key_store_id = aws_kms_custom_key_store.xks.id
}

data "aws_kms_custom_key_store" "by_name" {
  custom_key_store_name = aws_kms_custom_key_store.xks.custom_key_store_name
  depends_on            = [aws_kms_custom_key_store.xks]
}

output "store_id" { value = aws_kms_custom_key_store.xks.id }
output "connection_state" { value = data.aws_kms_custom_key_store.by_id.connection_state }
output "by_name_id" { value = data.aws_kms_custom_key_store.by_name.id }
