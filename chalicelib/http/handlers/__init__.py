"""One Chalice blueprint per resource. A handler gets the caller its route declares (routing),
turns the request into a typed input (request_data), calls one service and shapes the response
with the serializers."""
