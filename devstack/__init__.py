"""The local stack: moto's server as the AWS stand-in and the Chalice app behind an emulated
API Gateway, started by `./dev run`. Not deployed to AWS."""
