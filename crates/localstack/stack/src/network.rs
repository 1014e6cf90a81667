//! The account's network, as an operator has it before deploying: a VPC and a subnet. In the
//! local stack their addresses are loopback addresses, so that each instance's simulated
//! FreeSWITCH can listen on the instance's own private IP.

use crate::error::StackError;

#[derive(Debug, Clone)]
pub struct Network {
    pub vpc_id: String,
    pub vpc_cidr: String,
    pub subnet_id: String,
    pub subnet_cidr: String,
}

/// A new VPC in a random `127.x.0.0/16` and a subnet in it.
pub async fn loopback_network(sdk: &aws_config::SdkConfig) -> Result<Network, StackError> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let octet = 16 + rand::random::<u8>() % 230;
    let vpc_cidr = format!("127.{octet}.0.0/16");
    let subnet_cidr = format!("127.{octet}.{}.0/24", rand::random::<u8>() % 250);
    let vpc = ec2
        .create_vpc()
        .cidr_block(&vpc_cidr)
        .send()
        .await
        .map_err(StackError::aws(format!("create the VPC {vpc_cidr}")))?;
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .ok_or_else(|| StackError::Unexpected("CreateVpc answered no VPC id".into()))?
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block(&subnet_cidr)
        .send()
        .await
        .map_err(StackError::aws(format!("create the subnet {subnet_cidr}")))?;
    let subnet_id = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .ok_or_else(|| StackError::Unexpected("CreateSubnet answered no subnet id".into()))?
        .to_string();
    Ok(Network {
        vpc_id,
        vpc_cidr,
        subnet_id,
        subnet_cidr,
    })
}
