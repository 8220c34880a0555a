"""The job workers' own network: a VPC that holds nothing but them and reaches only the internet.

A job runs a QGIS project any user uploaded, so a worker must reach the public hosts a project
names (WMS, WFS, PostGIS) and the AWS APIs it uses, but nothing private: no database or service
of another VPC, no other worker. Hence a VPC of the workers' own with two public subnets (two
availability zones) routed to an internet gateway; each task gets a public IP, so no NAT gateway
(about $32 a month even when idle) is needed, and the network costs nothing while no worker runs
(a running worker's public IPv4 address costs $0.005 an hour).
Two layers keep private addresses out of reach:

- a network ACL on the subnets denies every packet to and from the VPC's own range and the
  private, shared and link-local ranges, and allows the rest;
- the security group has no inbound rule, and outbound rules only to the internet: every IPv4
  address outside those ranges (a security group can only allow, so the rules list them).

Both allow DNS with the VPC's resolver (its base address + 2), which the tasks use to find AWS
endpoints and project hosts; AWS exempts that resolver and the ECS task metadata and credentials
endpoint from ACLs and security groups, and the explicit rules keep DNS working whatever the
exemption. Gateway endpoints (free) keep S3 and DynamoDB traffic on AWS's network.
"""

from __future__ import annotations

import ipaddress

from .cfn import Json, get_att, ref, resource, sub

VPC = "JobVpc"
INTERNET_GATEWAY = "JobInternetGateway"
GATEWAY_ATTACHMENT = "JobInternetGatewayAttachment"
ROUTE_TABLE = "JobRouteTable"
INTERNET_ROUTE = "JobInternetRoute"
NETWORK_ACL = "JobNetworkAcl"
SECURITY_GROUP = "JobSecurityGroup"
SUBNETS = ["JobSubnetA", "JobSubnetB"]

VPC_CIDR = ipaddress.IPv4Network("10.0.0.0/16")
SUBNET_CIDRS = list(VPC_CIDR.subnets(new_prefix=20))[: len(SUBNETS)]
# The Amazon-provided DNS server of a VPC is at its base address plus two.
RESOLVER = ipaddress.IPv4Network(f"{VPC_CIDR.network_address + 2}/32")
# Addresses a worker has no business with: private networks (RFC 1918), shared address space
# (RFC 6598, carrier-grade NAT) and link-local addresses (RFC 3927: instance metadata and the like).
PRIVATE_RANGES = [ipaddress.IPv4Network(cidr) for cidr in
                  ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")]
ANYWHERE = ipaddress.IPv4Network("0.0.0.0/0")

TCP, UDP, ALL = 6, 17, -1
DNS_PORT = 53
EPHEMERAL_PORTS = (1024, 65535)
# S3 and DynamoDB have gateway endpoints, which cost nothing (interface endpoints do).
GATEWAY_ENDPOINT_SERVICES = {"JobS3Endpoint": "s3", "JobDynamoDbEndpoint": "dynamodb"}


def _without(network: ipaddress.IPv4Network, excluded: ipaddress.IPv4Network) -> list[ipaddress.IPv4Network]:
    if network.subnet_of(excluded):
        return []
    if excluded.subnet_of(network):
        return list(network.address_exclude(excluded))
    return [network]


def internet() -> list[ipaddress.IPv4Network]:
    """Every IPv4 address outside the private ranges, as few networks as possible."""
    networks = [ANYWHERE]
    for private in PRIVATE_RANGES:
        networks = [part for network in networks for part in _without(network, private)]
    return list(ipaddress.collapse_addresses(networks))


def _acl_entry(number: int, *, egress: bool, allow: bool, cidr: ipaddress.IPv4Network,
               protocol: int = ALL, ports: tuple[int, int] | None = None) -> Json:
    properties: Json = {
        "NetworkAclId": ref(NETWORK_ACL),
        "RuleNumber": number,
        "Egress": egress,
        "RuleAction": "allow" if allow else "deny",
        "Protocol": protocol,
        "CidrBlock": str(cidr),
    }
    if ports is not None:
        properties["PortRange"] = {"From": ports[0], "To": ports[1]}
    return resource("AWS::EC2::NetworkAclEntry", properties)


def _acl_entries() -> Json:
    """Rules apply lowest number first. The ACL is stateless: DNS answers come back on the
    asking socket's (ephemeral) port, and the internet's answers need the last inbound rule."""
    entries: Json = {}
    for egress, direction in ((True, "Out"), (False, "In")):
        dns_ports = (DNS_PORT, DNS_PORT) if egress else EPHEMERAL_PORTS
        entries[f"JobAcl{direction}DnsUdp"] = _acl_entry(
            100, egress=egress, allow=True, cidr=RESOLVER, protocol=UDP, ports=dns_ports)
        entries[f"JobAcl{direction}DnsTcp"] = _acl_entry(
            110, egress=egress, allow=True, cidr=RESOLVER, protocol=TCP, ports=dns_ports)
        for offset, denied in enumerate([VPC_CIDR, *PRIVATE_RANGES]):
            entries[f"JobAcl{direction}Deny{offset + 1}"] = _acl_entry(
                200 + 10 * offset, egress=egress, allow=False, cidr=denied)
        entries[f"JobAcl{direction}Internet"] = _acl_entry(1000, egress=egress, allow=True, cidr=ANYWHERE)
    return entries


def _security_group() -> Json:
    dns = [{"IpProtocol": protocol, "FromPort": DNS_PORT, "ToPort": DNS_PORT, "CidrIp": str(RESOLVER),
            "Description": "The VPC's DNS resolver"} for protocol in ("udp", "tcp")]
    everywhere_public = [{"IpProtocol": "-1", "CidrIp": str(network),
                          "Description": "The internet: no private, shared or link-local address"}
                         for network in internet()]
    return resource(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": "Job workers: no inbound traffic, outbound to the internet only",
            "VpcId": ref(VPC),
            "SecurityGroupEgress": dns + everywhere_public,
        },
    )


def _subnets() -> Json:
    resources: Json = {}
    for index, (subnet, cidr) in enumerate(zip(SUBNETS, SUBNET_CIDRS, strict=True)):
        resources[subnet] = resource(
            "AWS::EC2::Subnet",
            {
                "VpcId": ref(VPC),
                "CidrBlock": str(cidr),
                "AvailabilityZone": {"Fn::Select": [index, {"Fn::GetAZs": ""}]},
                "Tags": [{"Key": "Name", "Value": sub(f"${{AWS::StackName}}-jobs-{index + 1}")}],
            },
        )
        resources[f"{subnet}Routes"] = resource(
            "AWS::EC2::SubnetRouteTableAssociation",
            {"SubnetId": ref(subnet), "RouteTableId": ref(ROUTE_TABLE)},
        )
        resources[f"{subnet}Acl"] = resource(
            "AWS::EC2::SubnetNetworkAclAssociation",
            {"SubnetId": ref(subnet), "NetworkAclId": ref(NETWORK_ACL)},
        )
    return resources


def network_ready() -> list[str]:
    """What must exist before a worker starts: it pulls its image over the internet route, and
    must not run a moment in a subnet without the ACL."""
    return [INTERNET_ROUTE] + [f"{subnet}{part}" for subnet in SUBNETS for part in ("Routes", "Acl")]


def network_resources() -> Json:
    name = [{"Key": "Name", "Value": sub("${AWS::StackName}-jobs")}]
    return {
        VPC: resource(
            "AWS::EC2::VPC",
            # The resolver must answer: the tasks find AWS's endpoints and the projects' hosts by name.
            {"CidrBlock": str(VPC_CIDR), "EnableDnsSupport": True, "Tags": name},
        ),
        INTERNET_GATEWAY: resource("AWS::EC2::InternetGateway", {"Tags": name}),
        GATEWAY_ATTACHMENT: resource(
            "AWS::EC2::VPCGatewayAttachment",
            {"VpcId": ref(VPC), "InternetGatewayId": ref(INTERNET_GATEWAY)},
        ),
        ROUTE_TABLE: resource("AWS::EC2::RouteTable", {"VpcId": ref(VPC), "Tags": name}),
        INTERNET_ROUTE: resource(
            "AWS::EC2::Route",
            {"RouteTableId": ref(ROUTE_TABLE), "DestinationCidrBlock": str(ANYWHERE),
             "GatewayId": ref(INTERNET_GATEWAY)},
            DependsOn=GATEWAY_ATTACHMENT,
        ),
        **_subnets(),
        NETWORK_ACL: resource("AWS::EC2::NetworkAcl", {"VpcId": ref(VPC), "Tags": name}),
        **_acl_entries(),
        SECURITY_GROUP: _security_group(),
        **{
            logical_id: resource(
                "AWS::EC2::VPCEndpoint",
                {"VpcId": ref(VPC), "VpcEndpointType": "Gateway",
                 "ServiceName": sub(f"com.amazonaws.${{AWS::Region}}.{service}"),
                 "RouteTableIds": [ref(ROUTE_TABLE)]},
            )
            for logical_id, service in GATEWAY_ENDPOINT_SERVICES.items()
        },
    }


def subnet_ids() -> list[Json]:
    return [ref(subnet) for subnet in SUBNETS]


def security_group_id() -> Json:
    return get_att(SECURITY_GROUP, "GroupId")
