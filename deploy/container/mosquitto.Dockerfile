# Mosquitto for on-prem clusters, with the files `arteria broker mosquitto` writes.
#   arteria broker mosquitto --out deploy/container/broker --install-dir /mosquitto/config \
#     --persistence-dir /mosquitto/data --devices-file devices.txt --secrets-file secrets.json \
#     --dynsec-plugin /usr/lib/mosquitto_dynamic_security.so
#   docker build -f deploy/container/mosquitto.Dockerfile -t arteria-mosquitto:VERSION .
FROM eclipse-mosquitto:2.0.18
COPY --chown=mosquitto:mosquitto deploy/container/broker/ /mosquitto/config/
RUN mkdir -p /mosquitto/data && chown mosquitto:mosquitto /mosquitto/data
USER mosquitto
EXPOSE 1883
CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]
